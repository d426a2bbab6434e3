package orderstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/orderflow/orderflow/services/order-command/internal/adapters/orderstore"
	"github.com/orderflow/orderflow/services/order-command/internal/domain"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// placeEnv is a repository over a one-shard topology, with the test's own
// connection to that shard, the repository's metrics and its spans.
type placeEnv struct {
	t       *testing.T
	topo    shard.Topology
	repo    *orderstore.Repository
	db      *sql.DB
	metrics *prometheus.Registry
	spans   *tracetest.SpanRecorder
	nextNo  atomic.Int64
}

const shardName = "shard-0"

func newPlaceEnv(t *testing.T, topo shard.Topology, cfg orderstore.GroupConfig) *placeEnv {
	t.Helper()
	pool := testinfra.TestPool()
	// A placement the test holds on a row lock must not reach the statement
	// deadline before the test lets it go, however slow the machine.
	pool.StatementTimeout, pool.TxTimeout = 30*time.Second, 30*time.Second
	pools, err := shard.Open(topo, pool)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pools.Close() })
	spans := tracetest.NewSpanRecorder()
	repo, err := orderstore.NewRepository(pools, sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)).Tracer("test"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(repo.Collectors()...)
	return &placeEnv{t: t, topo: topo, repo: repo, db: testinfra.DB(t, topo.Shards[0].DSN), metrics: metrics, spans: spans}
}

// placed is the outcome of one Place.
type placed struct {
	requestID string
	sent      *domain.Order
	stored    *domain.Order
	created   bool
	err       error
}

// place places a new order for requestID; the same request id always has
// the same body, as a client's retry does.
func (e *placeEnv) place(ctx context.Context, requestID string) placed {
	req := domain.PlaceRequest{RequestID: requestID, UserID: "user-1", ShopID: "shop-1", DeliveryAddress: "1 Main St",
		Items: []domain.Item{{MenuID: "m-1", Name: "bibimbap", Quantity: 2, UnitPrice: 9000}, {MenuID: "m-2", Name: "tea", Quantity: 1, UnitPrice: 2000}}}
	o := domain.NewOrder(e.nextNo.Add(1), req, 20000, time.Now())
	ev := o.PlacedEvent()
	ev.ID = uuid.NewString()
	stored, created, err := e.repo.Place(ctx, e.topo, e.topo.PlaceRequest(requestID), o, ev)
	return placed{requestID: requestID, sent: o, stored: stored, created: created, err: err}
}

// placeAsync starts place and returns where its outcome arrives.
func (e *placeEnv) placeAsync(ctx context.Context, requestID string) <-chan placed {
	return async(func() placed { return e.place(ctx, requestID) })
}

// receive waits for a Place's outcome.
func (e *placeEnv) receive(ch <-chan placed) placed {
	e.t.Helper()
	return await(e.t, ch, "a Place")
}

// async runs f and returns where its result arrives.
func async[T any](f func() T) <-chan T {
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	return ch
}

// await waits for a result of async, failing the test if none arrives in
// time.
func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("%s never returned", what)
		var zero T
		return zero
	}
}

// waitFor polls until the shard has queued placements waiting and
// executing groups being committed.
func (e *placeEnv) waitFor(queued, executing int) {
	e.t.Helper()
	testinfra.Eventually(e.t, 10*time.Second, func() bool {
		q, x := e.repo.Waiting(shardName)
		return q == queued && x == executing
	}, "want %d placements queued and %d groups committing", queued, executing)
}

// hold occupies n group commits of the shard: a transaction of the test's
// inserts n request ids first and keeps their row locks, and one placement
// of each waits in its own group for them. release rolls the transaction
// back, which lets those placements through, and returns their outcomes.
func (e *placeEnv) hold(n int) (release func() []placed) {
	e.t.Helper()
	tx, err := e.db.BeginTx(context.Background(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	outcomes := make([]<-chan placed, n)
	for i := range n {
		id := fmt.Sprintf("hold-%d", i)
		if _, err := tx.Exec(`INSERT INTO orders (order_no, request_id, request_hash, user_id, shop_id, status,
			total_amount, delivery_address, version, placed_at, updated_at)
			VALUES (?, ?, '', 'u', 's', 'PLACED', 1, 'a', 1, NOW(6), NOW(6))`, 1_000_000_000+i, id); err != nil {
			e.t.Fatal(err)
		}
		outcomes[i] = e.placeAsync(context.Background(), id)
		e.waitFor(0, i+1)
	}
	return func() []placed {
		e.t.Helper()
		_ = tx.Rollback() // fails when the shard was killed meanwhile: the server rolled back
		out := make([]placed, n)
		for i, ch := range outcomes {
			out[i] = e.receive(ch)
		}
		return out
	}
}

// groups reads the group size histogram: how many groups were committed
// and how many placements they answered.
func (e *placeEnv) groups() (groups uint64, placements float64) {
	e.t.Helper()
	families, err := e.metrics.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "orderflow_order_group_size" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "shard" && l.GetValue() == shardName {
					return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
				}
			}
		}
	}
	return 0, 0
}

func (e *placeEnv) fallbacks() float64 {
	e.t.Helper()
	v, _ := testinfra.MetricValue(e.t, e.metrics, "orderflow_order_group_fallbacks_total", map[string]string{"shard": shardName})
	return v
}

// checkStored checks that the shard holds exactly want: each order under its
// request id, with its items, one history row and one outbox row, and no
// row of any other order.
func (e *placeEnv) checkStored(want []*domain.Order) {
	e.t.Helper()
	wantIDs := map[int64]string{}
	wantRows := map[string]map[int64]int{"order_items": {}, "order_status_history": {}, "outbox": {}}
	for _, o := range want {
		wantIDs[o.No] = o.RequestID
		wantRows["order_items"][o.No] = len(o.Items)
		wantRows["order_status_history"][o.No] = 1
		wantRows["outbox"][o.No] = 1
	}
	gotIDs := map[int64]string{}
	rows, err := e.db.Query("SELECT order_no, request_id FROM orders")
	if err != nil {
		e.t.Fatal(err)
	}
	for rows.Next() {
		var no int64
		var id string
		if err := rows.Scan(&no, &id); err != nil {
			e.t.Fatal(err)
		}
		gotIDs[no] = id
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		e.t.Fatal(err)
	}
	if !maps.Equal(gotIDs, wantIDs) {
		e.t.Errorf("orders stored (number: request id): %v, want %v", gotIDs, wantIDs)
	}
	for table, want := range wantRows {
		got := map[int64]int{}
		rows, err := e.db.Query("SELECT order_no, COUNT(*) FROM " + table + " GROUP BY order_no")
		if err != nil {
			e.t.Fatal(err)
		}
		for rows.Next() {
			var no int64
			var n int
			if err := rows.Scan(&no, &n); err != nil {
				e.t.Fatal(err)
			}
			got[no] = n
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			e.t.Fatal(err)
		}
		if !maps.Equal(got, want) {
			e.t.Errorf("%s rows per order: %v, want %v", table, got, want)
		}
	}
}

// created checks that p created its order and returns it.
func created(t *testing.T, p placed) *domain.Order {
	t.Helper()
	if p.err != nil || !p.created || p.stored == nil || p.stored.No != p.sent.No {
		t.Fatalf("%s: stored %v created=%v err=%v, want its own order %d created", p.requestID, p.stored, p.created, p.err, p.sent.No)
	}
	return p.stored
}

// repeated checks that p was answered with the order first stored under
// its request id, and created nothing.
func repeated(t *testing.T, p placed, first *domain.Order) {
	t.Helper()
	if p.err != nil || p.created || p.stored == nil {
		t.Fatalf("%s: stored %v created=%v err=%v, want order %d as stored before", p.requestID, p.stored, p.created, p.err, first.No)
	}
	if p.stored.No != first.No || p.stored.RequestHash != first.RequestHash || len(p.stored.Items) != len(first.Items) ||
		!p.stored.PlacedAt.Equal(first.PlacedAt) {
		t.Errorf("%s: answered with order %d placed at %s, want order %d placed at %s", p.requestID,
			p.stored.No, p.stored.PlacedAt, first.No, first.PlacedAt)
	}
}

// Concurrent placements on one shard, some of them concurrent retries of
// another's request, each store their order exactly once and get the one
// order of their request id, with group commit off and on; with it on,
// orders do share transactions.
func TestPlaceStoresEveryConcurrentOrderOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  orderstore.GroupConfig
	}{
		{name: "group commit off", cfg: orderstore.GroupConfig{Max: 1}},
		{name: "defaults", cfg: orderstore.GroupConfig{}},
		{name: "two groups in flight", cfg: orderstore.GroupConfig{InFlight: 2}},
		{name: "small groups", cfg: orderstore.GroupConfig{Max: 3, InFlight: 2}},
		{name: "lingering groups", cfg: orderstore.GroupConfig{Linger: 5 * time.Millisecond, LingerCount: 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newPlaceEnv(t, testinfra.Shards(t, 1), tc.cfg)
			grouped := tc.cfg.Max != 1
			inFlight := tc.cfg.WithDefaults().InFlight
			var release func() []placed
			if grouped {
				// Every worker's first order then waits behind the held
				// groups, so the first group after them is certain to hold
				// several.
				release = e.hold(inFlight)
			}
			const workers, perWorker = 8, 12
			outcomes := make(chan placed, 2*workers*perWorker)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range perWorker {
						outcomes <- e.place(context.Background(), fmt.Sprintf("burst-%d-%d", w, i))
						if i%3 == 0 { // a concurrent retry of a neighbour's request
							outcomes <- e.place(context.Background(), fmt.Sprintf("burst-%d-%d", (w+1)%workers, i))
						}
					}
				})
			}
			var stored []*domain.Order
			if grouped {
				e.waitFor(workers, inFlight)
				for _, p := range release() {
					stored = append(stored, created(t, p))
				}
			}
			wg.Wait()
			close(outcomes)

			byID := map[string][]placed{}
			for p := range outcomes {
				byID[p.requestID] = append(byID[p.requestID], p)
			}
			if len(byID) != workers*perWorker {
				t.Fatalf("%d request ids answered, want %d", len(byID), workers*perWorker)
			}
			for id, ps := range byID {
				var first *domain.Order
				for _, p := range ps {
					if p.err != nil {
						t.Fatalf("%s: %v", id, p.err)
					}
					if p.created {
						if first != nil {
							t.Fatalf("%s: created twice (orders %d and %d)", id, first.No, p.stored.No)
						}
						first = created(t, p)
					}
				}
				if first == nil {
					t.Fatalf("%s: no placement created the order", id)
				}
				for _, p := range ps {
					if !p.created {
						repeated(t, p, first)
					}
				}
				stored = append(stored, first)
			}
			e.checkStored(stored)

			groups, placements := e.groups()
			switch {
			case !grouped && groups != 0:
				t.Errorf("group commit off committed %d groups", groups)
			case grouped && placements <= float64(groups):
				t.Errorf("%d groups answered %.0f placements: no group held more than one", groups, placements)
			}
		})
	}
}

// A group that holds a retry of an order stored earlier is refused by the
// shard (duplicate request id) and rolled back whole; each of its orders is
// then placed on its own: the new ones are created, the retry gets the
// stored order.
func TestPlaceGroupFallsBackWhenAnOrderRepeatsAStoredRequest(t *testing.T) {
	t.Parallel()
	e := newPlaceEnv(t, testinfra.Shards(t, 1), orderstore.GroupConfig{InFlight: 1})
	first := created(t, e.place(context.Background(), "first"))

	release := e.hold(1)
	var outcomes []<-chan placed
	for i := range 7 {
		outcomes = append(outcomes, e.placeAsync(context.Background(), fmt.Sprintf("new-%d", i)))
		if i == 3 {
			outcomes = append(outcomes, e.placeAsync(context.Background(), "first"))
		}
		e.waitFor(len(outcomes), 1)
	}
	stored := []*domain.Order{first}
	for _, p := range release() {
		stored = append(stored, created(t, p))
	}
	for _, ch := range outcomes {
		p := e.receive(ch)
		if p.requestID == "first" {
			repeated(t, p, first)
			continue
		}
		stored = append(stored, created(t, p))
	}
	e.checkStored(stored)
	// The first order, the held one, then all eight in one group.
	if groups, placements := e.groups(); groups != 3 || placements != 10 {
		t.Errorf("%d groups answered %.0f placements, want 3 groups (1 + 1 + 8)", groups, placements)
	}
	if n := e.fallbacks(); n != 1 {
		t.Errorf("%.0f groups fell back to single placements, want 1", n)
	}
}

// Two placements of one request id in one group (a client's retry racing
// its first attempt) write the order once: the later one is answered with
// the earlier one's order, and nothing makes the group fall back. Every
// caller keeps a span of its own that tells the group's size, and the
// group's span links them.
func TestPlaceGroupAnswersARepeatInsideItWithTheFirstOrder(t *testing.T) {
	t.Parallel()
	e := newPlaceEnv(t, testinfra.Shards(t, 1), orderstore.GroupConfig{InFlight: 1})
	release := e.hold(1)
	var outcomes []<-chan placed
	for _, id := range []string{"twice", "other", "twice"} {
		outcomes = append(outcomes, e.placeAsync(context.Background(), id))
		e.waitFor(len(outcomes), 1)
	}
	stored := []*domain.Order{created(t, release()[0])}
	a, b, again := e.receive(outcomes[0]), e.receive(outcomes[1]), e.receive(outcomes[2])
	stored = append(stored, created(t, a), created(t, b))
	repeated(t, again, a.stored)
	if again.stored == a.stored {
		t.Error("both callers were answered with one *Order: they share its slices")
	}
	e.checkStored(stored)
	if n := e.fallbacks(); n != 0 {
		t.Errorf("%.0f groups fell back, want none: the repeat was answered inside its group", n)
	}

	sizes := map[int64]int64{}
	var groupSpans []sdktrace.ReadOnlySpan
	for _, s := range e.spans.Ended() {
		attrs := attribute.NewSet(s.Attributes()...)
		size, _ := attrs.Value("orderflow.group.size")
		switch s.Name() {
		case "shard tx place order":
			no, _ := attrs.Value("orderflow.order_no")
			sizes[no.AsInt64()] = size.AsInt64()
		case "shard tx order group":
			if size.AsInt64() == 3 {
				groupSpans = append(groupSpans, s)
			}
		}
	}
	for _, p := range []placed{a, b, again} {
		if sizes[p.sent.No] != 3 {
			t.Errorf("span of %s (order %d) has group size %d, want 3", p.requestID, p.sent.No, sizes[p.sent.No])
		}
	}
	if len(groupSpans) != 1 || len(groupSpans[0].Links()) != 2 {
		t.Errorf("want one span of the group of 3 linked to the two callers it is not a child of, got %d spans", len(groupSpans))
	}
}

// A caller that gives up while its order waits for a group is answered with
// its context's error at once, and its order is left out of the group.
func TestPlaceGroupLeavesOutACallerThatGaveUp(t *testing.T) {
	t.Parallel()
	e := newPlaceEnv(t, testinfra.Shards(t, 1), orderstore.GroupConfig{InFlight: 1})
	release := e.hold(1)
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := e.placeAsync(ctx, "gave-up")
	e.waitFor(1, 1)
	stays := e.placeAsync(context.Background(), "stays")
	e.waitFor(2, 1)
	cancel()
	if p := e.receive(gaveUp); !errors.Is(p.err, context.Canceled) || p.stored != nil {
		t.Fatalf("cancelled caller: stored %v err=%v, want context.Canceled", p.stored, p.err)
	}
	stored := []*domain.Order{created(t, release()[0]), created(t, e.receive(stays))}
	e.checkStored(stored)
	if groups, placements := e.groups(); groups != 2 || placements != 2 {
		t.Errorf("%d groups answered %.0f placements, want 2 groups of one (the held one, then the one left)", groups, placements)
	}
}

// With two groups in flight, a group that stalls (on a row lock here) does
// not hold up the next order of its shard.
func TestPlaceGroupKeepsTheShardServingWhileOneGroupStalls(t *testing.T) {
	t.Parallel()
	e := newPlaceEnv(t, testinfra.Shards(t, 1), orderstore.GroupConfig{InFlight: 2})
	release := e.hold(1)
	next := created(t, e.receive(e.placeAsync(context.Background(), "next")))
	e.waitFor(0, 1) // the stalled group, still committing
	e.checkStored([]*domain.Order{next})
	held := created(t, release()[0])
	e.checkStored([]*domain.Order{next, held})
}

// A shard that goes down under a group fails every caller of it, and of
// the group queued behind it, as unavailable, as each would have failed on
// its own.
func TestPlaceGroupFailsEveryCallerWhenTheShardGoesDown(t *testing.T) {
	t.Parallel()
	private := testinfra.StartMariaDB(t)
	topo := shard.Topology{
		Shards: []shard.Spec{{Name: shardName, DSN: testinfra.CreateDatabase(t, private.ServerDSN(), "orderflow")}},
		Epochs: []shard.Epoch{{FirstOrderNo: 1, Shards: []string{shardName}}},
	}
	e := newPlaceEnv(t, topo, orderstore.GroupConfig{InFlight: 1})
	release := e.hold(1)
	var outcomes []<-chan placed
	for i := range 5 {
		outcomes = append(outcomes, e.placeAsync(context.Background(), fmt.Sprintf("doomed-%d", i)))
		e.waitFor(i+1, 1)
	}
	private.Kill()
	all := release()
	for _, ch := range outcomes {
		all = append(all, e.receive(ch))
	}
	for _, p := range all {
		if !errors.Is(p.err, shard.ErrUnavailable) || p.stored != nil {
			t.Errorf("%s: stored %v err=%v, want shard.ErrUnavailable", p.requestID, p.stored, p.err)
		}
	}
	if groups, placements := e.groups(); groups != 2 || placements != 6 {
		t.Errorf("%d groups answered %.0f placements, want 2 (the held one, then the five queued)", groups, placements)
	}
}

func TestNewRepositoryRejectsGroupConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		cfg      orderstore.GroupConfig
		wantText string
	}{
		{name: "negative size", cfg: orderstore.GroupConfig{Max: -1}, wantText: "MAX"},
		{name: "size above the bound", cfg: orderstore.GroupConfig{Max: 1025}, wantText: "MAX"},
		{name: "negative in flight", cfg: orderstore.GroupConfig{InFlight: -2}, wantText: "IN_FLIGHT"},
		{name: "negative linger", cfg: orderstore.GroupConfig{Linger: -time.Millisecond}, wantText: "LINGER"},
		{name: "linger above the bound", cfg: orderstore.GroupConfig{Linger: time.Second}, wantText: "LINGER"},
		{name: "negative linger count", cfg: orderstore.GroupConfig{LingerCount: -1}, wantText: "LINGER_COUNT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := orderstore.NewRepository(nil, noop.NewTracerProvider().Tracer(""), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("NewRepository(%+v) = %v, want an error naming %s", tc.cfg, err, tc.wantText)
			}
		})
	}
	for _, ok := range []orderstore.GroupConfig{{}, {Max: 1}, {Max: 1024, InFlight: 8}, {Linger: 100 * time.Millisecond, LingerCount: 2000}} {
		if _, err := orderstore.NewRepository(nil, noop.NewTracerProvider().Tracer(""), ok); err != nil {
			t.Errorf("NewRepository(%+v): %v", ok, err)
		}
	}
}
