// Package orderstore stores orders on the MySQL shards: the order, its items, its
// status history and its outbox event in one local transaction on the
// order's shard, which concurrent placements of one shard share (group
// commit). It also hands out order numbers from each shard's sequence.
package orderstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow/services/order-command/internal/domain"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/sqlrows"
)

// Repository implements app.Repository over the shard pools.
type Repository struct {
	pools  *shard.Pools
	tracer trace.Tracer
	group  GroupConfig

	mu         sync.Mutex
	committers map[string]*groupCommitter // by shard, made on first use

	groupSize *prometheus.HistogramVec
	fallbacks *prometheus.CounterVec
}

// NewRepository returns a repository over the given shards. Each shard
// transaction is a span of tracer, a child of the request's span. group
// sets how concurrent Places of one shard are committed together.
func NewRepository(pools *shard.Pools, tracer trace.Tracer, group GroupConfig) (*Repository, error) {
	if err := group.Validate(); err != nil {
		return nil, err
	}
	return &Repository{
		pools: pools, tracer: tracer, group: group.WithDefaults(),
		committers: map[string]*groupCommitter{},
		groupSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orderflow_order_group_size",
			Help:    "Orders placed or changed by one group commit (one transaction) on the shard.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 8),
		}, []string{"shard"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orderflow_order_group_fallbacks_total",
			Help: "Group commits the shard refused (a repeated request id, mostly), whose orders were then placed or changed one by one.",
		}, []string{"shard"}),
	}, nil
}

// Collectors are the repository's metrics: the size of each group commit
// and how many groups fell back to placing their orders one by one.
func (r *Repository) Collectors() []prometheus.Collector {
	return []prometheus.Collector{r.groupSize, r.fallbacks}
}

// inSpan runs one shard transaction as a client span named name.
func (r *Repository) inSpan(ctx context.Context, name, shardName string, orderNo int64, tx func(ctx context.Context) error) error {
	attrs := []attribute.KeyValue{attribute.String("db.system.name", "mysql"), attribute.String("orderflow.shard", shardName)}
	if orderNo != 0 {
		attrs = append(attrs, attribute.Int64("orderflow.order_no", orderNo))
	}
	ctx, span := r.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer span.End()
	err := tx(ctx)
	if err != nil && !errors.Is(err, domain.ErrNotFound) { // not finding an order is an answer
		span.RecordError(err)
		span.SetStatus(codes.Error, "shard transaction failed")
	}
	return err
}

const duplicateKey = 1062

// orderWrite is an order and the event of its latest change: the rows a
// place or a change writes.
type orderWrite struct {
	o  *domain.Order
	ev domain.Event
}

// Place writes the order, its items, its first history row and its outbox
// row in one transaction. A duplicate request id rolls it back and returns
// the order stored under that request id. topo is the request's snapshot,
// the one loc and the order number were taken from.
//
// With group commit on, the transaction holds the other orders placed on
// the shard meanwhile (see groupCommitter); each caller still gets its own
// answer, and only once the commit holding its order has returned.
func (r *Repository) Place(ctx context.Context, topo shard.Topology, loc shard.Location, o *domain.Order, ev domain.Event) (*domain.Order, bool, error) {
	if routed, err := topo.Route(o.No); err != nil || routed.Shard != loc.Shard {
		return nil, false, fmt.Errorf("order %d does not route to shard %s (routes to %q): %w", o.No, loc.Shard, routed.Shard, err)
	}
	row := orderWrite{o: o, ev: ev}
	if r.group.Max == 1 {
		return r.placeAlone(ctx, loc.Shard, row)
	}
	var out outcome
	err := r.inSpan(ctx, "shard tx place order", loc.Shard, o.No, func(ctx context.Context) error {
		out = r.committer(loc.Shard).place(ctx, row)
		groupAttributes(ctx, out)
		return out.err
	})
	switch {
	case out.alone:
		return r.placeAlone(ctx, loc.Shard, row)
	case err != nil:
		return nil, false, err
	}
	return out.stored, out.created, nil
}

// placeAlone is Place of one order in a transaction of its own.
func (r *Repository) placeAlone(ctx context.Context, shardName string, row orderWrite) (*domain.Order, bool, error) {
	var batch shard.Batch
	addPlace(&batch, []orderWrite{row}, nil)
	err := r.inSpan(ctx, "shard tx place order", shardName, row.o.No, func(ctx context.Context) error {
		return r.pools.ExecAtomic(ctx, shardName, &batch)
	})
	if err == nil {
		return row.o, true, nil
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == duplicateKey && strings.Contains(me.Message, "uq_orders_request_id") {
		existing, err := r.FindByRequestID(ctx, shardName, row.o.RequestID)
		if err != nil {
			return nil, false, fmt.Errorf("reading the order of a repeated request: %w", err)
		}
		return existing, false, nil
	}
	return nil, false, err
}

// committer is the group committer of a shard. Shards added while the
// service runs get theirs on their first order.
func (r *Repository) committer(shardName string) *groupCommitter {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.committers[shardName]
	if !ok {
		c = newGroupCommitter(r.group, func(group []*member) { r.commitGroup(shardName, group) })
		r.committers[shardName] = c
	}
	return c
}

// commitGroup writes the orders of group in one transaction and answers
// each member. The transaction is the group's, not any one caller's: it
// runs without their cancellation (a caller that gives up must not roll
// back the others' orders), bounded by the shard's timeout from when its
// oldest member asked, and the shard's breaker counts it as one call per
// member, as if each had been placed or changed alone.
//
// A group without changes is one round trip (ExecAtomicFor). Changes add a
// first one: the orders they change, read and locked together; each change
// is then applied in the order its caller queued, a later change of the
// same order seeing the earlier one, and one that the domain refuses (or an
// order that does not exist) is answered so and writes nothing, while the
// rest of the group goes on.
func (r *Repository) commitGroup(shardName string, group []*member) {
	var places []orderWrite
	var changes []*member
	links := make([]trace.Link, 0, len(group)-1)
	for i, m := range group {
		switch {
		case m.change != nil:
			changes = append(changes, m)
		case m.first == nil:
			places = append(places, m.row)
		}
		if i > 0 {
			links = append(links, trace.Link{SpanContext: trace.SpanContextFromContext(m.ctx)})
		}
	}

	// The group's span is a child of its first member's, linked to the
	// others', so that every member's trace leads to the statements.
	ctx, span := r.tracer.Start(context.WithoutCancel(group[0].ctx), "shard tx order group",
		trace.WithSpanKind(trace.SpanKindClient), trace.WithLinks(links...),
		trace.WithAttributes(attribute.String("db.system.name", "mysql"), attribute.String("orderflow.shard", shardName),
			attribute.Int("orderflow.group.size", len(group)), attribute.Int("orderflow.group.placements", len(places)),
			attribute.Int("orderflow.group.changes", len(changes))))
	changed := map[*member]outcome{}
	var err error
	if len(changes) == 0 {
		var batch shard.Batch
		addPlace(&batch, places, nil)
		err = r.pools.ExecAtomicFor(ctx, shardName, &batch, len(group), group[0].queued)
	} else {
		err = r.pools.AtomicFor(ctx, shardName, len(group), group[0].queued, func(ctx context.Context, tx *shard.Atomic) error {
			writes, err := applyChanges(ctx, tx, changes, changed)
			if err != nil {
				return err
			}
			var batch shard.Batch
			addPlace(&batch, places, writes)
			return tx.Commit(ctx, &batch)
		})
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "shard transaction failed")
	}
	span.End()
	r.groupSize.WithLabelValues(shardName).Observe(float64(len(group)))

	refused := refusedRows(err)
	if refused {
		r.fallbacks.WithLabelValues(shardName).Inc()
	}
	for _, m := range group {
		out := outcome{size: len(group)}
		switch {
		case refused:
			out.alone = true
		case err != nil:
			out.err = fmt.Errorf("committing a group of %d orders: %w", len(group), err)
		case m.change != nil:
			c := changed[m]
			out.stored, out.err = c.stored, c.err
		case m.first != nil:
			// A retry that arrived with its first request: the answer to a
			// repeated request id, without the round trips of finding out.
			out.stored = cloneOrder(m.first.row.o)
		default:
			out.stored, out.created = m.row.o, true
		}
		m.done <- out
	}
}

// applyChanges reads and locks the orders the changes of a group change,
// applies each change in turn and records its outcome in outcomes. It
// returns the writes of the changes that were made, in their order.
func applyChanges(ctx context.Context, tx *shard.Atomic, changes []*member, outcomes map[*member]outcome) ([]orderWrite, error) {
	nos := make([]any, 0, len(changes))
	seen := map[int64]bool{}
	for _, m := range changes {
		if !seen[m.change.orderNo] {
			seen[m.change.orderNo] = true
			nos = append(nos, m.change.orderNo)
		}
	}
	// NOWAIT: an order locked by another transaction (a purge, another
	// instance's change) refuses the group at once instead of holding up
	// every placement queued behind it; alone, each change then waits for
	// its lock as it always did.
	query, args := loadQuery(orderKey{column: "order_no", values: nos, forUpdate: true, noWait: true})
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading orders: %w", err)
	}
	current, err := scanOrders(rows)
	if err != nil {
		// The shard answered with something this group cannot use (an
		// unknown status, say): as with a refused statement, each member
		// alone gets its own answer, and one order's trouble is not the
		// group's.
		return nil, &readRefusedError{err: err}
	}
	var writes []orderWrite
	for _, m := range changes {
		o, ok := current[m.change.orderNo]
		if !ok {
			outcomes[m] = outcome{err: domain.ErrNotFound}
			continue
		}
		// The change works on a copy: one it refuses leaves the order as
		// it was for the changes after it, and the answer of one is not
		// altered by the next.
		next := cloneOrder(o)
		ev, err := applyChange(m.change, next)
		if err != nil {
			outcomes[m] = outcome{err: err}
			continue
		}
		current[m.change.orderNo] = next
		writes = append(writes, orderWrite{o: next, ev: ev})
		outcomes[m] = outcome{stored: next}
	}
	return writes, nil
}

// applyChange runs a caller's change on the group's goroutine, where a
// panic would take the process down with every other member's order: it
// becomes that caller's error instead.
func applyChange(c *pendingChange, o *domain.Order) (ev domain.Event, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("changing order %d: panic: %v", c.orderNo, p)
		}
	}()
	return c.apply(o)
}

// refusedRows tells whether the shard answered a batch with an error about
// its rows rather than failing to answer: a repeated request id (a retry of
// an order already stored), most often, but any statement error of one
// order — a key that should never repeat, a value the schema refuses, a
// group too large for one packet, a deadlock with a concurrent retry —
// would otherwise fail every order of its group. The transaction was rolled
// back whole, so each order can be placed again on its own and get the
// answer it would have got without grouping. Errors that mean the shard did
// not answer (ErrUnavailable: down, hung, breaker open, pool busy) are the
// same for every order and are not retried.
func refusedRows(err error) bool {
	var me *mysql.MySQLError
	var re *readRefusedError
	return (errors.As(err, &me) || errors.As(err, &re)) && !errors.Is(err, shard.ErrUnavailable)
}

// readRefusedError is a group's locking read that the shard answered but
// whose rows the group could not take (see applyChanges).
type readRefusedError struct{ err error }

func (e *readRefusedError) Error() string { return e.err.Error() }
func (e *readRefusedError) Unwrap() error { return e.err }

// cloneOrder copies o, so that two callers answered with one order share no
// slices.
func cloneOrder(o *domain.Order) *domain.Order {
	c := *o
	c.Items = slices.Clone(o.Items)
	c.History = slices.Clone(o.History)
	return &c
}

// addPlace adds the statements that place the orders of places and store
// the changes of changed: one INSERT per table whatever the number of
// orders, and an UPDATE per change, so a group costs the shard four
// statements and one per change, however many orders it holds.
func addPlace(b *shard.Batch, places, changed []orderWrite) {
	addOrders(b, places)
	addItems(b, places)
	for _, c := range changed {
		o := c.o
		b.Add("UPDATE orders SET status = ?, version = ?, cancel_reason = ?, updated_at = ? WHERE order_no = ?",
			o.Status.String(), o.Version, nullable(o.CancelReason), o.UpdatedAt, o.No)
	}
	all := slices.Concat(places, changed)
	addHistory(b, all)
	addOutbox(b, all)
}

func addOrders(b *shard.Batch, rows []orderWrite) {
	addValues(b, `INSERT INTO orders (order_no, request_id, request_hash, user_id, shop_id, status,
		total_amount, delivery_address, cancel_reason, version, placed_at, updated_at) VALUES `,
		"(?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)", len(rows), func(args []any) []any {
			for _, r := range rows {
				o := r.o
				args = append(args, o.No, o.RequestID, o.RequestHash[:], o.UserID, o.ShopID, o.Status.String(),
					o.TotalAmount, o.DeliveryAddress, o.Version, o.PlacedAt, o.UpdatedAt)
			}
			return args
		})
}

func addItems(b *shard.Batch, rows []orderWrite) {
	n := 0
	for _, r := range rows {
		n += len(r.o.Items)
	}
	addValues(b, "INSERT INTO order_items (order_no, line_no, menu_id, name, quantity, unit_price) VALUES ",
		"(?, ?, ?, ?, ?, ?)", n, func(args []any) []any {
			for _, r := range rows {
				for i, it := range r.o.Items {
					args = append(args, r.o.No, i+1, it.MenuID, it.Name, it.Quantity, it.UnitPrice)
				}
			}
			return args
		})
}

// addHistory adds the latest history row of each order.
func addHistory(b *shard.Batch, rows []orderWrite) {
	addValues(b, "INSERT INTO order_status_history (order_no, version, status, changed_at) VALUES ",
		"(?, ?, ?, ?)", len(rows), func(args []any) []any {
			for _, r := range rows {
				c := r.o.History[len(r.o.History)-1]
				args = append(args, r.o.No, c.Version, c.Status.String(), c.ChangedAt)
			}
			return args
		})
}

func addOutbox(b *shard.Batch, rows []orderWrite) {
	addValues(b, "INSERT INTO outbox (event_id, event_type, order_no, order_version, occurred_at, traceparent) VALUES ",
		"(?, ?, ?, ?, ?, ?)", len(rows), func(args []any) []any {
			for _, r := range rows {
				ev := r.ev
				args = append(args, ev.ID, ev.Type.String(), ev.OrderNo, ev.Version, ev.OccurredAt, ev.Traceparent)
			}
			return args
		})
}

// addValues adds one INSERT of n rows: head, then n copies of tuple, with
// the arguments appendArgs appends. Nothing is added for no rows.
func addValues(b *shard.Batch, head, tuple string, n int, appendArgs func(args []any) []any) {
	if n == 0 {
		return
	}
	var q strings.Builder
	q.Grow(len(head) + n*(len(tuple)+2))
	q.WriteString(head)
	for i := range n {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(tuple)
	}
	b.Add(q.String(), appendArgs(make([]any, 0, n*strings.Count(tuple, "?")))...)
}

// Update changes an order: change gets the order as stored and returns the
// event of what it did to it, or an error that leaves the order unchanged.
// The order row is locked (SELECT ... FOR UPDATE) while change runs, so
// concurrent changes of one order serialise and each sees the version the
// previous one wrote.
//
// With group commit on, the change goes in a group commit of its shard
// (see commitGroup), and change runs on that group's goroutine: it must do
// its work on o alone and return quickly.
func (r *Repository) Update(ctx context.Context, orderNo int64, change func(o *domain.Order) (domain.Event, error)) (*domain.Order, error) {
	loc, err := r.pools.Topology().Route(orderNo)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", domain.ErrNotFound, err)
	}
	if r.group.Max == 1 || r.group.SeparateChanges {
		return r.updateAlone(ctx, loc.Shard, orderNo, change)
	}
	var out outcome
	err = r.inSpan(ctx, "shard tx update order", loc.Shard, orderNo, func(ctx context.Context) error {
		out = r.committer(loc.Shard).update(ctx, &pendingChange{orderNo: orderNo, apply: change})
		groupAttributes(ctx, out)
		return out.err
	})
	switch {
	case out.alone:
		return r.updateAlone(ctx, loc.Shard, orderNo, change)
	case err != nil:
		return nil, err
	}
	return out.stored, nil
}

// updateAlone is Update in a transaction of its own.
func (r *Repository) updateAlone(ctx context.Context, shardName string, orderNo int64, change func(o *domain.Order) (domain.Event, error)) (*domain.Order, error) {
	var updated *domain.Order
	// The locking read sees the latest committed version at any isolation
	// level, so the default level saves the SET TRANSACTION round trip.
	err := r.inSpan(ctx, "shard tx update order", shardName, orderNo, func(ctx context.Context) error {
		return r.pools.InTx(ctx, shardName, sql.LevelDefault, func(ctx context.Context, tx *sql.Tx) error {
			o, err := load(ctx, tx, orderKey{column: "order_no", values: []any{orderNo}, forUpdate: true})
			if err != nil {
				return err
			}
			ev, err := change(o)
			if err != nil {
				return err
			}
			var batch shard.Batch
			addPlace(&batch, nil, []orderWrite{{o: o, ev: ev}})
			if err := batch.Exec(ctx, tx); err != nil {
				return fmt.Errorf("storing the change: %w", err)
			}
			updated = o
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return updated, nil
}

// groupAttributes records on a caller's span how its group commit went.
func groupAttributes(ctx context.Context, out outcome) {
	trace.SpanFromContext(ctx).SetAttributes(attribute.Int("orderflow.group.size", out.size),
		attribute.Bool("orderflow.group.alone", out.alone))
}

// Get reads an order with its items and history.
func (r *Repository) Get(ctx context.Context, orderNo int64) (*domain.Order, error) {
	loc, err := r.pools.Topology().Route(orderNo)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", domain.ErrNotFound, err)
	}
	return r.read(ctx, loc.Shard, orderKey{column: "order_no", values: []any{orderNo}})
}

// FindByRequestID reads the order a request created on a shard, or
// domain.ErrNotFound.
func (r *Repository) FindByRequestID(ctx context.Context, shardName, requestID string) (*domain.Order, error) {
	return r.read(ctx, shardName, orderKey{column: "request_id", values: []any{requestID}})
}

func (r *Repository) read(ctx context.Context, shardName string, key orderKey) (*domain.Order, error) {
	var o *domain.Order
	// One snapshot for the order, its items and its history.
	err := r.inSpan(ctx, "shard tx read order", shardName, 0, func(ctx context.Context) error {
		return r.pools.InTx(ctx, shardName, sql.LevelRepeatableRead, func(ctx context.Context, tx *sql.Tx) error {
			var err error
			o, err = load(ctx, tx, key)
			return err
		})
	})
	return o, err
}

// orderKey names the orders a load reads: by number or by request id, and
// whether the order rows are locked (FOR UPDATE) for a change.
type orderKey struct {
	column    string // "order_no" or "request_id"
	values    []any
	forUpdate bool
	// noWait fails a locking read at once (MySQL error) when a row is
	// locked, rather than waiting for it.
	noWait bool
}

// loadQuery reads orders, their items and their history in one round trip:
// three statements whose result sets come back together (the pools allow
// multi statements), and their arguments. The items and the history are
// selected by the orders' numbers through a subquery on the same key, so a
// lookup by request id needs no second trip either; under the order rows'
// locks (or the read's snapshot) they are those of the order rows read.
func loadQuery(key orderKey) (string, []any) {
	in, args := sqlrows.In(key.values)
	where := "WHERE " + key.column + " IN (" + in + ")"
	lock := ""
	if key.forUpdate {
		lock = " FOR UPDATE"
		if key.noWait {
			lock += " NOWAIT"
		}
	}
	byOrder := "WHERE order_no IN (" + in + ")"
	if key.column != "order_no" {
		byOrder = "WHERE order_no IN (SELECT order_no FROM orders " + where + ")"
	}
	return `SELECT order_no, request_id, request_hash, user_id, shop_id, status, total_amount,
		delivery_address, cancel_reason, version, placed_at, updated_at FROM orders ` + where + lock + `;
		SELECT order_no, menu_id, name, quantity, unit_price FROM order_items ` + byOrder + ` ORDER BY order_no, line_no;
		SELECT order_no, status, version, changed_at FROM order_status_history ` + byOrder + ` ORDER BY order_no, version`,
		slices.Concat(args, args, args)
}

// load reads the one order key names, with its items and history, inside
// tx, or domain.ErrNotFound.
func load(ctx context.Context, tx *sql.Tx, key orderKey) (*domain.Order, error) {
	query, args := loadQuery(key)
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading order: %w", err)
	}
	orders, err := scanOrders(rows)
	if err != nil {
		return nil, err
	}
	for _, o := range orders {
		return o, nil
	}
	return nil, domain.ErrNotFound
}

// scanOrders reads the three result sets of loadQuery into orders by
// number, and closes rows.
func scanOrders(rows *sql.Rows) (map[int64]*domain.Order, error) {
	defer rows.Close()
	orders := map[int64]*domain.Order{}
	for rows.Next() {
		o := &domain.Order{}
		var status string
		var hash []byte
		var cancelReason sql.NullString
		if err := rows.Scan(&o.No, &o.RequestID, &hash, &o.UserID, &o.ShopID, &status, &o.TotalAmount,
			&o.DeliveryAddress, &cancelReason, &o.Version, &o.PlacedAt, &o.UpdatedAt); err != nil {
			return nil, fmt.Errorf("reading order: %w", err)
		}
		copy(o.RequestHash[:], hash)
		o.CancelReason = cancelReason.String
		var ok bool
		if o.Status, ok = domain.ParseStatus(status); !ok {
			return nil, fmt.Errorf("order %d has unknown status %q", o.No, status)
		}
		orders[o.No] = o
	}
	if err := sqlrows.NextResultSet(rows, "items"); err != nil {
		return nil, err
	}
	for rows.Next() {
		var no int64
		var it domain.Item
		if err := rows.Scan(&no, &it.MenuID, &it.Name, &it.Quantity, &it.UnitPrice); err != nil {
			return nil, fmt.Errorf("reading items: %w", err)
		}
		if o := orders[no]; o != nil {
			o.Items = append(o.Items, it)
		}
	}
	if err := sqlrows.NextResultSet(rows, "history"); err != nil {
		return nil, err
	}
	for rows.Next() {
		var no int64
		var c domain.StatusChange
		var s string
		if err := rows.Scan(&no, &s, &c.Version, &c.ChangedAt); err != nil {
			return nil, fmt.Errorf("reading history: %w", err)
		}
		c.Status, _ = domain.ParseStatus(s)
		if o := orders[no]; o != nil {
			o.History = append(o.History, c)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading history: %w", err)
	}
	return orders, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
