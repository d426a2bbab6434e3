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
			Name:    "orderflow_order_place_group_size",
			Help:    "Orders placed by one group commit (one transaction) on the shard.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 8),
		}, []string{"shard"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orderflow_order_place_group_fallbacks_total",
			Help: "Group commits the shard refused (a repeated request id, mostly), whose orders were then placed one by one.",
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
		trace.SpanFromContext(ctx).SetAttributes(attribute.Int("orderflow.place.group_size", out.size),
			attribute.Bool("orderflow.place.alone", out.alone))
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
	addPlace(&batch, []orderWrite{row})
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
// back the others' orders), bounded by the shard's statement timeout from
// when its oldest member asked, and the shard's breaker counts it as one
// call per member, as if each had been placed alone.
func (r *Repository) commitGroup(shardName string, group []*member) {
	rows := make([]orderWrite, 0, len(group))
	links := make([]trace.Link, 0, len(group)-1)
	for i, m := range group {
		if m.first == nil {
			rows = append(rows, m.row)
		}
		if i > 0 {
			links = append(links, trace.Link{SpanContext: trace.SpanContextFromContext(m.ctx)})
		}
	}
	var batch shard.Batch
	addPlace(&batch, rows)

	// The group's span is a child of its first member's, linked to the
	// others', so that every member's trace leads to the statements.
	ctx, span := r.tracer.Start(context.WithoutCancel(group[0].ctx), "shard tx place order group",
		trace.WithSpanKind(trace.SpanKindClient), trace.WithLinks(links...),
		trace.WithAttributes(attribute.String("db.system.name", "mysql"), attribute.String("orderflow.shard", shardName),
			attribute.Int("orderflow.place.group_size", len(group)), attribute.Int("orderflow.place.group_orders", len(rows))))
	err := r.pools.ExecAtomicFor(ctx, shardName, &batch, len(group), group[0].queued)
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
	return errors.As(err, &me) && !errors.Is(err, shard.ErrUnavailable)
}

// cloneOrder copies o, so that two callers answered with one order share no
// slices.
func cloneOrder(o *domain.Order) *domain.Order {
	c := *o
	c.Items = slices.Clone(o.Items)
	c.History = slices.Clone(o.History)
	return &c
}

// addPlace adds the INSERTs that place rows: one statement per table
// whatever the number of orders, so a group costs the shard four statements
// however many orders it holds.
func addPlace(b *shard.Batch, rows []orderWrite) {
	addOrders(b, rows)
	addItems(b, rows)
	addHistory(b, rows)
	addOutbox(b, rows)
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

// Update locks the order row (SELECT ... FOR UPDATE), so concurrent changes
// of one order serialise and each sees the version the previous one wrote.
func (r *Repository) Update(ctx context.Context, orderNo int64, change func(o *domain.Order) (domain.Event, error)) (*domain.Order, error) {
	loc, err := r.pools.Topology().Route(orderNo)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", domain.ErrNotFound, err)
	}
	var updated *domain.Order
	// The locking read sees the latest committed version at any isolation
	// level, so the default level saves the SET TRANSACTION round trip.
	err = r.inSpan(ctx, "shard tx update order", loc.Shard, orderNo, func(ctx context.Context) error {
		return r.pools.InTx(ctx, loc.Shard, sql.LevelDefault, func(ctx context.Context, tx *sql.Tx) error {
			o, err := load(ctx, tx, orderKey{column: "order_no", value: orderNo, forUpdate: true})
			if err != nil {
				return err
			}
			ev, err := change(o)
			if err != nil {
				return err
			}
			var batch shard.Batch
			batch.Add("UPDATE orders SET status = ?, version = ?, cancel_reason = ?, updated_at = ? WHERE order_no = ?",
				o.Status.String(), o.Version, nullable(o.CancelReason), o.UpdatedAt, o.No)
			changed := []orderWrite{{o: o, ev: ev}}
			addHistory(&batch, changed)
			addOutbox(&batch, changed)
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

// Get reads an order with its items and history.
func (r *Repository) Get(ctx context.Context, orderNo int64) (*domain.Order, error) {
	loc, err := r.pools.Topology().Route(orderNo)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", domain.ErrNotFound, err)
	}
	return r.read(ctx, loc.Shard, orderKey{column: "order_no", value: orderNo})
}

// FindByRequestID reads the order a request created on a shard, or
// domain.ErrNotFound.
func (r *Repository) FindByRequestID(ctx context.Context, shardName, requestID string) (*domain.Order, error) {
	return r.read(ctx, shardName, orderKey{column: "request_id", value: requestID})
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

// load reads one order, its items and its history inside tx.
// orderKey names the order load reads: by number or by request id, and
// whether the order row is locked (FOR UPDATE) for a change.
type orderKey struct {
	column    string // "order_no" or "request_id"
	value     any
	forUpdate bool
}

// load reads an order, its items and its history in one round trip: three
// statements whose result sets come back together (the pools allow multi
// statements). The items and the history are selected by the order's number
// through a subquery on the same key, so a lookup by request id needs no
// second trip either; under the order row's lock (or the read's snapshot)
// they are those of the order row read.
func load(ctx context.Context, tx *sql.Tx, key orderKey) (*domain.Order, error) {
	where := "WHERE " + key.column + " = ?"
	lock := ""
	if key.forUpdate {
		lock = " FOR UPDATE"
	}
	byOrder := "WHERE order_no = ?"
	if key.column != "order_no" {
		byOrder = "WHERE order_no = (SELECT order_no FROM orders " + where + ")"
	}
	rows, err := tx.QueryContext(ctx, `SELECT order_no, request_id, request_hash, user_id, shop_id, status, total_amount,
		delivery_address, cancel_reason, version, placed_at, updated_at FROM orders `+where+lock+`;
		SELECT menu_id, name, quantity, unit_price FROM order_items `+byOrder+` ORDER BY line_no;
		SELECT status, version, changed_at FROM order_status_history `+byOrder+` ORDER BY version`,
		key.value, key.value, key.value)
	if err != nil {
		return nil, fmt.Errorf("reading order: %w", err)
	}
	defer rows.Close()
	o := &domain.Order{}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("reading order: %w", err)
		}
		return nil, domain.ErrNotFound
	}
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
	if !rows.NextResultSet() {
		return nil, fmt.Errorf("reading items: %w", errors.Join(rows.Err(), errors.New("no result set")))
	}
	for rows.Next() {
		var it domain.Item
		if err := rows.Scan(&it.MenuID, &it.Name, &it.Quantity, &it.UnitPrice); err != nil {
			return nil, fmt.Errorf("reading items: %w", err)
		}
		o.Items = append(o.Items, it)
	}
	if !rows.NextResultSet() {
		return nil, fmt.Errorf("reading history: %w", errors.Join(rows.Err(), errors.New("no result set")))
	}
	for rows.Next() {
		var c domain.StatusChange
		var s string
		if err := rows.Scan(&s, &c.Version, &c.ChangedAt); err != nil {
			return nil, fmt.Errorf("reading history: %w", err)
		}
		c.Status, _ = domain.ParseStatus(s)
		o.History = append(o.History, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading history: %w", err)
	}
	return o, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
