// Package orderstore stores orders on the MySQL shards: the order, its items, its
// status history and its outbox event in one local transaction on the
// order's shard. It also hands out order numbers from each shard's sequence.
package orderstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
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
}

// NewRepository returns a repository over the given shards. Each shard
// transaction is a span of tracer, a child of the request's span.
func NewRepository(pools *shard.Pools, tracer trace.Tracer) *Repository {
	return &Repository{pools: pools, tracer: tracer}
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

// Place writes the order, its items, its first history row and its outbox
// row in one transaction. A duplicate request id rolls it back and returns
// the order stored under that request id. topo is the request's snapshot,
// the one loc and the order number were taken from.
func (r *Repository) Place(ctx context.Context, topo shard.Topology, loc shard.Location, o *domain.Order, ev domain.Event) (*domain.Order, bool, error) {
	if routed, err := topo.Route(o.No); err != nil || routed.Shard != loc.Shard {
		return nil, false, fmt.Errorf("order %d does not route to shard %s (routes to %q): %w", o.No, loc.Shard, routed.Shard, err)
	}
	var batch shard.Batch
	batch.Add(`INSERT INTO orders (order_no, request_id, request_hash, user_id, shop_id, status,
		total_amount, delivery_address, cancel_reason, version, placed_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)`,
		o.No, o.RequestID, o.RequestHash[:], o.UserID, o.ShopID, o.Status.String(),
		o.TotalAmount, o.DeliveryAddress, o.Version, o.PlacedAt, o.UpdatedAt)
	addItems(&batch, o)
	addHistory(&batch, o.No, o.History[len(o.History)-1])
	addOutbox(&batch, ev)
	err := r.inSpan(ctx, "shard tx place order", loc.Shard, o.No, func(ctx context.Context) error {
		return r.pools.ExecAtomic(ctx, loc.Shard, &batch)
	})
	if err == nil {
		return o, true, nil
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == duplicateKey && strings.Contains(me.Message, "uq_orders_request_id") {
		existing, err := r.FindByRequestID(ctx, loc.Shard, o.RequestID)
		if err != nil {
			return nil, false, fmt.Errorf("reading the order of a repeated request: %w", err)
		}
		return existing, false, nil
	}
	return nil, false, err
}

func addItems(b *shard.Batch, o *domain.Order) {
	var q strings.Builder
	q.WriteString("INSERT INTO order_items (order_no, line_no, menu_id, name, quantity, unit_price) VALUES ")
	args := make([]any, 0, len(o.Items)*6)
	for i, it := range o.Items {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?)")
		args = append(args, o.No, i+1, it.MenuID, it.Name, it.Quantity, it.UnitPrice)
	}
	b.Add(q.String(), args...)
}

func addHistory(b *shard.Batch, orderNo int64, c domain.StatusChange) {
	b.Add("INSERT INTO order_status_history (order_no, version, status, changed_at) VALUES (?, ?, ?, ?)",
		orderNo, c.Version, c.Status.String(), c.ChangedAt)
}

func addOutbox(b *shard.Batch, ev domain.Event) {
	b.Add(`INSERT INTO outbox (event_id, event_type, order_no, order_version, occurred_at, traceparent)
		VALUES (?, ?, ?, ?, ?, ?)`, ev.ID, ev.Type.String(), ev.OrderNo, ev.Version, ev.OccurredAt, ev.Traceparent)
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
			o, err := load(ctx, tx, "WHERE order_no = ? FOR UPDATE", orderNo)
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
			addHistory(&batch, o.No, o.History[len(o.History)-1])
			addOutbox(&batch, ev)
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
	return r.read(ctx, loc.Shard, "WHERE order_no = ?", orderNo)
}

// FindByRequestID reads the order a request created on a shard, or
// domain.ErrNotFound.
func (r *Repository) FindByRequestID(ctx context.Context, shardName, requestID string) (*domain.Order, error) {
	return r.read(ctx, shardName, "WHERE request_id = ?", requestID)
}

func (r *Repository) read(ctx context.Context, shardName, where string, arg any) (*domain.Order, error) {
	var o *domain.Order
	// One snapshot for the order, its items and its history.
	err := r.inSpan(ctx, "shard tx read order", shardName, 0, func(ctx context.Context) error {
		return r.pools.InTx(ctx, shardName, sql.LevelRepeatableRead, func(ctx context.Context, tx *sql.Tx) error {
			var err error
			o, err = load(ctx, tx, where, arg)
			return err
		})
	})
	return o, err
}

// load reads one order, its items and its history inside tx.
func load(ctx context.Context, tx *sql.Tx, where string, arg any) (*domain.Order, error) {
	o := &domain.Order{}
	var status string
	var hash []byte
	var cancelReason sql.NullString
	err := tx.QueryRowContext(ctx, `SELECT order_no, request_id, request_hash, user_id, shop_id, status, total_amount,
		delivery_address, cancel_reason, version, placed_at, updated_at FROM orders `+where, arg).Scan(
		&o.No, &o.RequestID, &hash, &o.UserID, &o.ShopID, &status, &o.TotalAmount,
		&o.DeliveryAddress, &cancelReason, &o.Version, &o.PlacedAt, &o.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading order: %w", err)
	}
	copy(o.RequestHash[:], hash)
	o.CancelReason = cancelReason.String
	var ok bool
	if o.Status, ok = domain.ParseStatus(status); !ok {
		return nil, fmt.Errorf("order %d has unknown status %q", o.No, status)
	}

	rows, err := tx.QueryContext(ctx,
		"SELECT menu_id, name, quantity, unit_price FROM order_items WHERE order_no = ? ORDER BY line_no", o.No)
	if err != nil {
		return nil, fmt.Errorf("reading items: %w", err)
	}
	if o.Items, err = sqlrows.ScanAll(rows, func(rows *sql.Rows) (domain.Item, error) {
		var it domain.Item
		err := rows.Scan(&it.MenuID, &it.Name, &it.Quantity, &it.UnitPrice)
		return it, err
	}); err != nil {
		return nil, fmt.Errorf("reading items: %w", err)
	}

	rows, err = tx.QueryContext(ctx,
		"SELECT status, version, changed_at FROM order_status_history WHERE order_no = ? ORDER BY version", o.No)
	if err != nil {
		return nil, fmt.Errorf("reading history: %w", err)
	}
	if o.History, err = sqlrows.ScanAll(rows, func(rows *sql.Rows) (domain.StatusChange, error) {
		var c domain.StatusChange
		var s string
		err := rows.Scan(&s, &c.Version, &c.ChangedAt)
		c.Status, _ = domain.ParseStatus(s)
		return c, err
	}); err != nil {
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
