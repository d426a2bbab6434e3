// Package source reads orders from their shards for the projector: for a
// batch of order numbers, one query per shard returns each order with its
// items and status history, all from one consistent snapshot.
package source

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/sqlrows"
)

// Item is one line of an order.
type Item struct {
	MenuID    string `json:"m"`
	Name      string `json:"n"`
	Quantity  int32  `json:"q"`
	UnitPrice int64  `json:"p"`
	Line      int    `json:"l"`
}

// Change is one status-history entry.
type Change struct {
	Status    string    `json:"s"`
	Version   int32     `json:"v"`
	ChangedAt time.Time `json:"-"`
	At        string    `json:"t"`
}

// Order is the current state of an order on its shard.
type Order struct {
	OrderNo         int64
	Shard           string
	UserID          string
	ShopID          string
	Status          string
	TotalAmount     int64
	DeliveryAddress string
	CancelReason    string
	Version         int32
	PlacedAt        time.Time
	UpdatedAt       time.Time
	Items           []Item
	History         []Change
}

// Reader reads orders through the same routing as the command side.
type Reader struct {
	pools *shard.Pools
}

// NewReader returns a reader over the shards.
func NewReader(pools *shard.Pools) *Reader { return &Reader{pools: pools} }

// readSQL is one statement (so one snapshot) that returns every order with
// its items and the history up to its version, aggregated as JSON; it runs on
// MariaDB 10.11 and MySQL 8.4 alike (JSON_ARRAYAGG without ORDER BY, so the
// caller sorts).
const readSQL = `SELECT o.order_no, o.user_id, o.shop_id, o.status, o.total_amount, o.delivery_address,
	COALESCE(o.cancel_reason, ''), o.version, o.placed_at, o.updated_at,
	(SELECT JSON_ARRAYAGG(JSON_OBJECT('m', i.menu_id, 'n', i.name, 'q', i.quantity, 'p', i.unit_price, 'l', i.line_no))
		FROM order_items i WHERE i.order_no = o.order_no),
	(SELECT JSON_ARRAYAGG(JSON_OBJECT('s', h.status, 'v', h.version, 't', DATE_FORMAT(h.changed_at, '%Y-%m-%dT%H:%i:%s.%fZ')))
		FROM order_status_history h WHERE h.order_no = o.order_no AND h.version <= o.version)
	FROM orders o WHERE o.order_no IN (`

// Read returns the orders that exist, by number; numbers missing from the
// result are not on their shard (never placed, or purged).
func (r *Reader) Read(ctx context.Context, orderNos []int64) (map[int64]Order, error) {
	byShard := map[string][]int64{}
	for _, no := range orderNos {
		loc, err := r.pools.Topology().Route(no)
		if err != nil {
			continue // below every epoch: no shard can hold it
		}
		byShard[loc.Shard] = append(byShard[loc.Shard], no)
	}
	out := make(map[int64]Order, len(orderNos))
	for name, nos := range byShard {
		if err := r.readShard(ctx, name, nos, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readShard reads through the shard's circuit breaker and statement
// timeout, so a shard that stops answering fails the read in time.
func (r *Reader) readShard(ctx context.Context, name string, nos []int64, out map[int64]Order) error {
	return r.pools.Do(ctx, name, func(ctx context.Context, db *sql.DB) error { return readOrders(ctx, db, name, nos, out) })
}

func readOrders(ctx context.Context, db *sql.DB, name string, nos []int64, out map[int64]Order) error {
	in, args := sqlrows.In(nos)
	rows, err := db.QueryContext(ctx, readSQL+in+")", args...)
	if err != nil {
		return shard.Classify(name, fmt.Errorf("reading orders: %w", err))
	}
	orders, err := sqlrows.ScanAll(rows, func(rows *sql.Rows) (Order, error) {
		o := Order{Shard: name}
		var items, history sql.NullString
		if err := rows.Scan(&o.OrderNo, &o.UserID, &o.ShopID, &o.Status, &o.TotalAmount, &o.DeliveryAddress,
			&o.CancelReason, &o.Version, &o.PlacedAt, &o.UpdatedAt, &items, &history); err != nil {
			return o, fmt.Errorf("reading order row: %w", err)
		}
		if err := decode(items.String, &o.Items); err != nil {
			return o, fmt.Errorf("order %d items: %w", o.OrderNo, err)
		}
		if err := decode(history.String, &o.History); err != nil {
			return o, fmt.Errorf("order %d history: %w", o.OrderNo, err)
		}
		for i := range o.History {
			t, err := time.Parse("2006-01-02T15:04:05.000000Z", o.History[i].At)
			if err != nil {
				return o, fmt.Errorf("order %d history time %q: %w", o.OrderNo, o.History[i].At, err)
			}
			o.History[i].ChangedAt = t
		}
		slices.SortFunc(o.Items, func(a, b Item) int { return a.Line - b.Line })
		slices.SortFunc(o.History, func(a, b Change) int { return int(a.Version - b.Version) })
		return o, nil
	})
	if err != nil {
		return shard.Classify(name, err)
	}
	for _, o := range orders {
		out[o.OrderNo] = o
	}
	return nil
}

func decode(s string, v any) error {
	if s == "" {
		return nil
	}
	return json.Unmarshal([]byte(s), v)
}
