package orderstore_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderflow/orderflow/services/order-command/internal/adapters/orderstore"
	"github.com/orderflow/orderflow/services/order-command/internal/domain"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// changed is the outcome of one Update.
type changed struct {
	stored *domain.Order
	err    error
}

// accept and cancel are the changes the service makes, with an event id.
func accept(o *domain.Order) (domain.Event, error) {
	return withID(o.Advance(domain.StatusAccepted, time.Now(), time.Hour))
}

func cancel(o *domain.Order) (domain.Event, error) {
	return withID(o.Cancel("out of stock", time.Now(), time.Hour))
}

func withID(ev domain.Event, err error) (domain.Event, error) {
	ev.ID = uuid.NewString()
	return ev, err
}

func (e *placeEnv) update(orderNo int64, change func(o *domain.Order) (domain.Event, error)) changed {
	o, err := e.repo.Update(context.Background(), orderNo, change)
	return changed{stored: o, err: err}
}

func (e *placeEnv) updateAsync(orderNo int64, change func(o *domain.Order) (domain.Event, error)) <-chan changed {
	return async(func() changed { return e.update(orderNo, change) })
}

func (e *placeEnv) receiveChange(ch <-chan changed) changed {
	e.t.Helper()
	return await(e.t, ch, "an Update")
}

// storedChanges reads what the shard holds of an order: its status and
// version, the versions of its history rows and of its outbox rows.
func (e *placeEnv) storedChanges(orderNo int64) (status string, version int64, history, outbox []int64) {
	e.t.Helper()
	if err := e.db.QueryRow("SELECT status, version FROM orders WHERE order_no = ?", orderNo).Scan(&status, &version); err != nil {
		e.t.Fatal(err)
	}
	versions := func(query string) []int64 {
		rows, err := e.db.Query(query, orderNo)
		if err != nil {
			e.t.Fatal(err)
		}
		var vs []int64
		for rows.Next() {
			var v int64
			if err := rows.Scan(&v); err != nil {
				e.t.Fatal(err)
			}
			vs = append(vs, v)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			e.t.Fatal(err)
		}
		return vs
	}
	return status, version, versions("SELECT version FROM order_status_history WHERE order_no = ? ORDER BY version"),
		versions("SELECT order_version FROM outbox WHERE order_no = ? ORDER BY order_version")
}

// Accepts and cancels queued behind a commit join the next group with the
// placements queued meanwhile, in one transaction, and each is answered as
// if it had run alone in its turn: a second change of one order sees the
// first, a change the domain refuses (or that panics) and one of a missing
// order write nothing and fail alone, and the rest of the group commits.
func TestChangesShareAGroupWithPlacements(t *testing.T) {
	t.Parallel()
	e := newPlaceEnv(t, testinfra.Shards(t, 1), orderstore.GroupConfig{InFlight: 1})
	x := created(t, e.place(context.Background(), "x"))
	release := e.hold(1)

	queued := 0
	queue := func(ch <-chan changed) <-chan changed {
		queued++
		e.waitFor(queued, 1)
		return ch
	}
	newOrder := e.placeAsync(context.Background(), "new")
	queued++
	e.waitFor(queued, 1)
	accepted := queue(e.updateAsync(x.No, accept))
	refused := queue(e.updateAsync(x.No, accept)) // ACCEPTED to ACCEPTED
	panicked := queue(e.updateAsync(x.No, func(o *domain.Order) (domain.Event, error) {
		// A change that fails after touching the order leaves it untouched:
		// were this kept, the cancel after it would be refused.
		o.Status = domain.StatusCancelled
		panic("boom")
	}))
	missing := queue(e.updateAsync(x.No+1_000_000, accept))
	cancelled := queue(e.updateAsync(x.No, cancel))
	created(t, release()[0])

	if c := e.receiveChange(accepted); c.err != nil || c.stored.Status != domain.StatusAccepted || c.stored.Version != 2 {
		t.Errorf("accept: %+v, %v; want ACCEPTED at version 2", c.stored, c.err)
	}
	var rule *domain.RuleError
	if c := e.receiveChange(refused); !errors.As(c.err, &rule) || rule.Rule != domain.RuleStatusTransition || c.stored != nil {
		t.Errorf("second accept: %+v, %v; want the status transition refused", c.stored, c.err)
	}
	if c := e.receiveChange(panicked); c.err == nil || !strings.Contains(c.err.Error(), "panic: boom") {
		t.Errorf("panicking change: %v, want its panic as its error", c.err)
	}
	if c := e.receiveChange(missing); !errors.Is(c.err, domain.ErrNotFound) {
		t.Errorf("change of a missing order: %v, want domain.ErrNotFound", c.err)
	}
	c := e.receiveChange(cancelled)
	if c.err != nil || c.stored.Status != domain.StatusCancelled || c.stored.Version != 3 || len(c.stored.History) != 3 {
		t.Errorf("cancel: %+v, %v; want CANCELLED at version 3 with three history entries", c.stored, c.err)
	}
	created(t, e.receive(newOrder))

	status, version, history, outbox := e.storedChanges(x.No)
	if status != "CANCELLED" || version != 3 || !slices.Equal(history, []int64{1, 2, 3}) || !slices.Equal(outbox, []int64{1, 2, 3}) {
		t.Errorf("order %d stored as %s v%d, history %v, outbox %v; want CANCELLED v3 with rows of versions 1, 2, 3",
			x.No, status, version, history, outbox)
	}
	got, err := e.repo.Get(context.Background(), x.No)
	if err != nil || got.Status != domain.StatusCancelled || got.CancelReason != "out of stock" || len(got.Items) != len(x.Items) {
		t.Errorf("Get after the group: %+v, %v", got, err)
	}
	// The place before the hold, the held one, then everything queued: one
	// placement and five changes.
	if groups, members := e.groups(); groups != 3 || members != 8 {
		t.Errorf("%d groups answered %.0f members, want 3 groups of 1, 1 and 6", groups, members)
	}
	if n := e.fallbacks(); n != 0 {
		t.Errorf("%.0f groups fell back, want none: every answer came from the group", n)
	}
}

// A group the shard refuses is rolled back whole, its changes too; each
// change then runs on its own and is made exactly once. The refusals come
// at the first statement (a retry of a stored request id) and at the last
// (an outbox event id stored before), after the change's UPDATE and history
// row have run.
func TestChangesOfARefusedGroupAreMadeOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// refuse queues a placement the shard refuses and checks its answer.
		refuse func(e *placeEnv, stored *domain.Order) (check func())
	}{
		{name: "repeated request id", refuse: func(e *placeEnv, stored *domain.Order) func() {
			retry := e.placeAsync(context.Background(), "stored")
			return func() { repeated(e.t, e.receive(retry), stored) }
		}},
		{name: "repeated event id", refuse: func(e *placeEnv, stored *domain.Order) func() {
			var storedEvent string
			if err := e.db.QueryRow("SELECT event_id FROM outbox WHERE order_no = ?", stored.No).Scan(&storedEvent); err != nil {
				e.t.Fatal(err)
			}
			clash := async(func() placed {
				req := domain.PlaceRequest{RequestID: "clash", UserID: "user-1", ShopID: "shop-1", DeliveryAddress: "1 Main St",
					Items: []domain.Item{{MenuID: "m-1", Name: "bibimbap", Quantity: 1, UnitPrice: 9000}}}
				o := domain.NewOrder(e.nextNo.Add(1), req, 9000, time.Now())
				ev := o.PlacedEvent()
				ev.ID = storedEvent
				got, created, err := e.repo.Place(context.Background(), e.topo, e.topo.PlaceRequest("clash"), o, ev)
				return placed{requestID: "clash", sent: o, stored: got, created: created, err: err}
			})
			return func() {
				if p := e.receive(clash); p.err == nil {
					e.t.Errorf("placement with a stored event id: %+v, want the shard's refusal", p.stored)
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newPlaceEnv(t, testinfra.Shards(t, 1), orderstore.GroupConfig{InFlight: 1})
			x := created(t, e.place(context.Background(), "x"))
			stored := created(t, e.place(context.Background(), "stored"))
			release := e.hold(1)
			accepted := e.updateAsync(x.No, accept)
			e.waitFor(1, 1)
			check := tc.refuse(e, stored)
			e.waitFor(2, 1)
			created(t, release()[0])

			if c := e.receiveChange(accepted); c.err != nil || c.stored.Version != 2 {
				t.Errorf("accept: %+v, %v; want version 2", c.stored, c.err)
			}
			check()
			if n := e.fallbacks(); n != 1 {
				t.Errorf("%.0f groups fell back, want 1", n)
			}
			status, version, history, outbox := e.storedChanges(x.No)
			if status != "ACCEPTED" || version != 2 || !slices.Equal(history, []int64{1, 2}) || !slices.Equal(outbox, []int64{1, 2}) {
				t.Errorf("order stored as %s v%d, history %v, outbox %v; want ACCEPTED v2 with rows of versions 1, 2", status, version, history, outbox)
			}
		})
	}
}

// A change whose order another transaction holds locked does not hold up
// its group: the group is refused at once (NOWAIT), its placement is made
// on its own, and the change waits for the lock alone and is made once.
func TestChangeOfALockedOrderDoesNotStallItsGroup(t *testing.T) {
	t.Parallel()
	e := newPlaceEnv(t, testinfra.Shards(t, 1), orderstore.GroupConfig{InFlight: 1})
	x := created(t, e.place(context.Background(), "x"))
	lock, err := e.db.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Rollback() }()
	if _, err := lock.Exec("SELECT order_no FROM orders WHERE order_no = ? FOR UPDATE", x.No); err != nil {
		t.Fatal(err)
	}
	release := e.hold(1)
	accepted := e.updateAsync(x.No, accept)
	e.waitFor(1, 1)
	next := e.placeAsync(context.Background(), "next")
	e.waitFor(2, 1)
	created(t, release()[0])

	// The placement is answered while the order is still locked.
	created(t, e.receive(next))
	if n := e.fallbacks(); n != 1 {
		t.Errorf("%.0f groups fell back, want 1 (refused on the lock)", n)
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	if c := e.receiveChange(accepted); c.err != nil || c.stored.Version != 2 {
		t.Errorf("accept: %+v, %v; want version 2 once the lock is gone", c.stored, c.err)
	}
	if _, version, history, outbox := e.storedChanges(x.No); version != 2 || !slices.Equal(history, []int64{1, 2}) || !slices.Equal(outbox, []int64{1, 2}) {
		t.Errorf("order v%d, history %v, outbox %v; want v2 with rows of versions 1, 2", version, history, outbox)
	}
}

// Concurrent accepts and cancels of the same orders serialise, grouped or
// not: every change that succeeded is one version, one history row and one
// outbox row, none is lost or made twice, and every order ends cancelled.
func TestConcurrentChangesOfOneOrderSerialise(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  orderstore.GroupConfig
	}{
		{name: "group commit off", cfg: orderstore.GroupConfig{Max: 1}},
		{name: "changes apart from the groups", cfg: orderstore.GroupConfig{SeparateChanges: true}},
		{name: "defaults", cfg: orderstore.GroupConfig{}},
		{name: "small groups", cfg: orderstore.GroupConfig{Max: 3, InFlight: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newPlaceEnv(t, testinfra.Shards(t, 1), tc.cfg)
			const orders = 10
			var nos []int64
			for i := range orders {
				nos = append(nos, created(t, e.place(context.Background(), "o-"+string(rune('a'+i)))).No)
			}
			succeeded := make([]int, orders)
			var mu sync.Mutex
			var wg sync.WaitGroup
			for i, no := range nos {
				for _, change := range []func(*domain.Order) (domain.Event, error){accept, cancel, accept, cancel} {
					wg.Go(func() {
						c := e.update(no, change)
						var rule *domain.RuleError
						switch {
						case c.err == nil:
							mu.Lock()
							succeeded[i]++
							mu.Unlock()
						case !errors.As(c.err, &rule):
							t.Errorf("order %d: %v, want success or a rule refusing the change", no, c.err)
						}
					})
				}
			}
			wg.Wait()
			for i, no := range nos {
				status, version, history, outbox := e.storedChanges(no)
				want := []int64{1}
				for v := range succeeded[i] {
					want = append(want, int64(v+2))
				}
				if status != "CANCELLED" || version != int64(len(want)) || !slices.Equal(history, want) || !slices.Equal(outbox, want) {
					t.Errorf("order %d after %d changes: %s v%d, history %v, outbox %v; want CANCELLED with versions %v",
						no, succeeded[i], status, version, history, outbox, want)
				}
			}
		})
	}
}
