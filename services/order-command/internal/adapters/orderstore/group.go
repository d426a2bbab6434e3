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
	// Linger is how long a group waits for more members once its oldest
	// has asked, before it commits. A group commit costs the shard and this
	// service about the same whatever its size, and at a moderate rate, when
	// commits are quick, groups would otherwise hold one or two orders: a
	// few milliseconds of waiting buy several orders per commit. It bounds
	// a wait rather than adding one to every order: a group of LingerCount
	// members stops waiting at once, and members that queued behind a commit
	// in flight count their wait from when they asked. Zero commits as soon
	// as a group can start (natural batching only); that is also what a
	// configuration built in code gets.
	Linger time.Duration `env:"LINGER" envDefault:"8ms"`
	// LingerCount ends the linger early: a group that holds this many
	// members commits at once (it may still take up to Max of those
	// queued). Clients that wait for each answer before they send again
	// come back together, and this keeps their rounds from waiting out the
	// linger. As MySQL's binlog_group_commit_sync_no_delay_count is to its
	// sync delay. Zero means Max.
	LingerCount int `env:"LINGER_COUNT" envDefault:"8"`
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
	// maxLinger bounds Linger: a longer wait for company would be a
	// latency of its own, and would eat into the statement deadline that
	// counts from when the oldest member asked.
	maxLinger = 100 * time.Millisecond
)

// WithDefaults fills the zero settings with their defaults.
func (c GroupConfig) WithDefaults() GroupConfig {
	if c.Max == 0 {
		c.Max = DefaultGroupMax
	}
	if c.InFlight == 0 {
		c.InFlight = DefaultGroupInFlight
	}
	if c.LingerCount == 0 || c.LingerCount > c.Max {
		c.LingerCount = c.Max
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
	if c.LingerCount < 0 {
		errs = append(errs, fmt.Errorf("LINGER_COUNT must be at least 1 (zero: MAX), got %d", c.LingerCount))
	}
	if c.Linger < 0 || c.Linger > maxLinger {
		errs = append(errs, fmt.Errorf("LINGER must be between 0 and %s, got %s", maxLinger, c.Linger))
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
// groups committing starts a committer goroutine, which waits until the
// oldest queued member has waited linger (or lingerCount members are queued),
// commits everything queued as one group, and goes on with the next group
// until the queue is empty. With no linger there is no timer ("natural
// batching": a lone order goes at once, and orders that arrive while a
// commit is under way form the next group). Every commit is bounded by the
// shard's timeouts (the statement timeout for a group of placements, the
// transaction timeout for one with changes), so the queue always drains and
// no goroutine outlives the work it was started for.
type groupCommitter struct {
	max, inFlight int
	// linger and lingerCount: see GroupConfig.
	linger      time.Duration
	lingerCount int
	// commit writes a group and answers each of its members.
	commit func(group []*member)
	// full wakes a lingering committer when lingerCount members are queued; a
	// wake-up that finds nothing to do is harmless (the wait is re-checked).
	full chan struct{}

	mu        sync.Mutex
	queue     []*member
	executing int // committer goroutines, lingering or committing
}

func newGroupCommitter(cfg GroupConfig, commit func(group []*member)) *groupCommitter {
	cfg = cfg.WithDefaults()
	return &groupCommitter{max: cfg.Max, inFlight: cfg.InFlight, linger: cfg.Linger, lingerCount: cfg.LingerCount, commit: commit,
		full: make(chan struct{}, 1)}
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
	start := c.executing < c.inFlight
	if start {
		c.executing++
	}
	if len(c.queue) >= c.lingerCount {
		select {
		case c.full <- struct{}{}:
		default:
		}
	}
	c.mu.Unlock()
	if start {
		go c.run()
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

// run commits the queued groups one after another until none is left.
func (c *groupCommitter) run() {
	for {
		group := c.next()
		if group == nil {
			return
		}
		c.commit(group)
	}
}

// next waits until the oldest queued member has lingered or lingerCount
// members are queued, and takes the group. It returns nil, and counts this committer
// out, once the queue is empty.
func (c *groupCommitter) next() []*member {
	var wait *time.Timer
	defer func() {
		if wait != nil {
			wait.Stop()
		}
	}()
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.executing--
			c.mu.Unlock()
			return nil
		}
		left := time.Until(c.queue[0].queued.Add(c.linger))
		if left <= 0 || len(c.queue) >= c.lingerCount {
			group := c.takeLocked()
			c.mu.Unlock()
			if len(group) > 0 {
				return group
			}
			continue // everyone taken had given up; look again
		}
		c.mu.Unlock()
		if wait == nil {
			wait = time.NewTimer(left)
		} else {
			wait.Reset(left)
		}
		select {
		case <-wait.C:
		case <-c.full:
		}
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
