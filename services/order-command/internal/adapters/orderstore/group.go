package orderstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/orderflow/orderflow/services/order-command/internal/domain"
)

// GroupConfig sets how concurrent PlaceOrders, accepts and cancels of one
// shard are committed together (group commit). Most of what a shard spends
// on an order is per statement and per commit, not per row: writes that
// arrive while a commit of their shard is under way wait for it and then go
// together, as one transaction: the changed orders read with one locking
// read, then multi-row INSERTs for the new orders, an UPDATE per changed
// order, multi-row INSERTs of history and outbox rows, and the COMMIT.
type GroupConfig struct {
	// Max is the most placements and changes one group commit holds; 1
	// turns group commit off (every order and every change is its own
	// transaction). Zero means the default.
	Max int `env:"MAX" envDefault:"64"`
	// InFlight is how many groups of one shard may commit at once. One
	// batches the most: a second group in flight takes the orders that would
	// have waited for the first, so groups form later and stay smaller
	// (measured on one shard at 2,000 orders/s: 0.29 ms of MariaDB CPU per
	// order with one, 0.41 ms with two, 0.50 ms without grouping). More
	// than one keeps a shard's orders moving while one group stalls, on a
	// row lock of a concurrent retry, say; such stalls last until that
	// other transaction commits, and a hung shard stalls every group
	// alike. Zero means the default.
	InFlight int `env:"IN_FLIGHT" envDefault:"1"`
	// SeparateChanges keeps accepts and cancels out of the groups: each is
	// then a transaction of its own (four round trips), as before they
	// joined them. For comparing the two; grouped is cheaper for the shard.
	SeparateChanges bool `env:"SEPARATE_CHANGES"`
}

// Defaults of GroupConfig, used where it is zero (a configuration built in
// code, as tests do, rather than read from the environment).
const (
	DefaultGroupMax      = 64
	DefaultGroupInFlight = 1
	// maxGroupMax bounds Max: a group is one statement per table, and the
	// largest orders (domain.MaxItems lines) of a group this size stay a few
	// megabytes, well under a shard's max_allowed_packet.
	maxGroupMax = 1024
)

// WithDefaults fills the zero settings with their defaults.
func (c GroupConfig) WithDefaults() GroupConfig {
	if c.Max == 0 {
		c.Max = DefaultGroupMax
	}
	if c.InFlight == 0 {
		c.InFlight = DefaultGroupInFlight
	}
	return c
}

// Validate checks the settings (zero stands for the default).
func (c GroupConfig) Validate() error {
	var errs []error
	if c.Max < 0 || c.Max > maxGroupMax {
		errs = append(errs, fmt.Errorf("MAX must be between 1 and %d (1 turns group commit off), got %d", maxGroupMax, c.Max))
	}
	if c.InFlight < 0 {
		errs = append(errs, fmt.Errorf("IN_FLIGHT must be at least 1, got %d", c.InFlight))
	}
	return errors.Join(errs...)
}

// member is one Place or one change (accept, cancel) waiting for, or taking
// part in, a group commit.
type member struct {
	ctx context.Context
	// row is the order a Place writes (row.o is nil for a change).
	row orderWrite
	// change is the change of an existing order; nil for a Place.
	change *pendingChange
	// queued is when the caller asked: the shard's statement deadline
	// counts from it (see shard.Pools.ExecAtomicFor).
	queued time.Time
	// done receives the outcome once; buffered, so that answering never
	// waits for a caller that has given up.
	done chan outcome
	// first is the earlier member of the same group with the same request
	// id (a concurrent retry): this one writes nothing and is answered with
	// first's order.
	first *member
}

// pendingChange is an Update waiting in a group: the order it changes and
// what it does to it (see Repository.Update).
type pendingChange struct {
	orderNo int64
	apply   func(o *domain.Order) (domain.Event, error)
}

// outcome is what a group commit tells one member.
type outcome struct {
	stored  *domain.Order
	created bool
	err     error
	// alone asks the member to place or change its order on its own: the
	// shard refused the group (rolled back whole), and alone each order gets
	// the answer it would have got without grouping.
	alone bool
	// size is the number of members of the group.
	size int
}

// groupCommitter coalesces the Places and changes of one shard. It runs no
// goroutine of its own while idle: a call that finds fewer than inFlight
// groups committing starts one with everything queued ("natural batching":
// no timer, so a lone order goes at once), and a group that finishes takes
// the next from the queue until it is empty. Every commit is bounded by the
// shard's timeouts (the statement timeout for a group of placements, the
// transaction timeout for one with changes), so the queue always drains and
// no goroutine outlives the work it was started for.
type groupCommitter struct {
	max, inFlight int
	// commit writes a group and answers each of its members.
	commit func(group []*member)

	mu        sync.Mutex
	queue     []*member
	executing int // groups being committed
}

func newGroupCommitter(cfg GroupConfig, commit func(group []*member)) *groupCommitter {
	return &groupCommitter{max: cfg.Max, inFlight: cfg.InFlight, commit: commit}
}

// place queues row and waits until a group holding it has committed or
// failed, or until ctx ends. A caller whose context ends while it is queued
// is left out of its group: its order is not written.
func (c *groupCommitter) place(ctx context.Context, row orderWrite) outcome {
	return c.join(&member{ctx: ctx, row: row})
}

// update queues ch as place queues an order.
func (c *groupCommitter) update(ctx context.Context, ch *pendingChange) outcome {
	return c.join(&member{ctx: ctx, change: ch})
}

func (c *groupCommitter) join(m *member) outcome {
	ctx := m.ctx
	m.queued, m.done = time.Now(), make(chan outcome, 1)
	c.mu.Lock()
	c.queue = append(c.queue, m)
	var group []*member
	if c.executing < c.inFlight {
		if group = c.takeLocked(); len(group) > 0 {
			c.executing++
		}
	}
	c.mu.Unlock()
	if len(group) > 0 {
		go c.run(group)
	}
	select {
	case out := <-m.done:
		return out
	case <-ctx.Done():
		// Once its group has started, the write may still commit: as with
		// any write cut off mid-way, a retry with the same request id finds
		// the order, and a repeated accept or cancel finds it done.
		return outcome{err: ctx.Err()}
	}
}

// run commits group, then the groups queued meanwhile, until none is left.
func (c *groupCommitter) run(group []*member) {
	for len(group) > 0 {
		c.commit(group)
		c.mu.Lock()
		group = c.takeLocked()
		if len(group) == 0 {
			c.executing--
		}
		c.mu.Unlock()
	}
}

// takeLocked removes up to max members from the front of the queue and
// returns them, oldest first, leaving out those whose caller has given up.
// A request id that is already in the group makes the member a follower of
// the first (see member.first). c.mu must be held.
func (c *groupCommitter) takeLocked() []*member {
	var group []*member
	byRequest := map[string]*member{}
	n := 0
	for ; n < len(c.queue) && len(group) < c.max; n++ {
		m := c.queue[n]
		if m.ctx.Err() != nil {
			continue // its caller has returned with the context's error
		}
		if m.change != nil {
			group = append(group, m)
			continue
		}
		if first, ok := byRequest[m.row.o.RequestID]; ok {
			m.first = first
		} else {
			byRequest[m.row.o.RequestID] = m
		}
		group = append(group, m)
	}
	rest := copy(c.queue, c.queue[n:])
	clear(c.queue[rest:]) // let answered members be collected
	c.queue = c.queue[:rest]
	return group
}

// waiting is how many Places and changes are queued and how many groups are being
// committed.
func (c *groupCommitter) waiting() (queued, executing int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue), c.executing
}
