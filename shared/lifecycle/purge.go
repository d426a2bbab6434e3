// Package lifecycle ends an order's life on the write side: orders older than
// the retention (30 days by default: an order can only be cancelled within
// 30 days) are removed from their shard in small batches, and only once the
// read side holds the order's latest version and every event of it was
// published, so nothing that is still needed is deleted. The delete locks the
// orders and their outbox rows and checks both again, so an order changed
// (or an event replayed) after the check is kept for a later run. The
// retention is at least retention.Min, the longest an order can still be
// changed, so an order that can be changed is never purged. The MongoDB
// documents stay as history. Removing old orders is also what evens out the
// shards after one is added: the data of the old epochs simply ages out.
package lifecycle

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orderflow/orderflow/shared/lifecycle/retention"
	"github.com/orderflow/orderflow/shared/orderdoc"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/sqlrows"
)

// PurgeConfig says what to purge.
type PurgeConfig struct {
	// Retention: orders placed more than this before Now are purged. At
	// least retention.Min.
	Retention time.Duration
	// Now is the clock's reading (injectable for tests and simulations).
	Now time.Time
	// Batch is how many orders one delete transaction removes at most.
	Batch int
	// DryRun only counts.
	DryRun bool

	// afterCheck, when set, runs between a batch's check and its delete:
	// tests change orders exactly there (see export_test.go).
	afterCheck func(ctx context.Context, shard string, nos []int64)
}

// Validate checks the config.
func (c PurgeConfig) Validate() error {
	if c.Batch < 1 {
		return fmt.Errorf("purge batch must be positive, got %d", c.Batch)
	}
	if err := retention.ValidateRetention(c.Retention); err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	return nil
}

// ShardResult is what happened on one shard.
type ShardResult struct {
	Shard  string
	Purged int
	// Held are old orders kept because the read side is behind, an event
	// was not published yet, or the order changed while it was checked; a
	// later run takes them.
	Held int
}

// Purger removes old orders.
type Purger struct {
	pools *shard.Pools
	docs  *mongo.Collection
}

// NewPurger returns a purger over the shards and the read side's database.
func NewPurger(pools *shard.Pools, db *mongo.Database) *Purger {
	return &Purger{pools: pools, docs: db.Collection(orderdoc.Collection)}
}

// Purge runs over every shard; progress is told after each batch.
func (p *Purger) Purge(ctx context.Context, cfg PurgeConfig, progress func(ShardResult)) ([]ShardResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cutoff := cfg.Now.Add(-cfg.Retention).UTC()
	var out []ShardResult
	for _, name := range p.pools.Topology().Names() {
		res, err := p.shard(ctx, name, cutoff, cfg, progress)
		out = append(out, res)
		if err != nil {
			return out, fmt.Errorf("purging %s: %w", name, err)
		}
	}
	return out, nil
}

func (p *Purger) shard(ctx context.Context, name string, cutoff time.Time, cfg PurgeConfig, progress func(ShardResult)) (ShardResult, error) {
	res := ShardResult{Shard: name}
	db, err := p.pools.DB(name)
	if err != nil {
		return res, err
	}
	// Walk the old orders by (placed_at, order_no), so held ones are passed
	// over instead of being read again and again.
	afterAt, afterNo := time.Time{}, int64(0)
	for {
		rows, err := db.QueryContext(ctx, `SELECT order_no, version, placed_at FROM orders
			WHERE placed_at < ? AND (placed_at > ? OR (placed_at = ? AND order_no > ?))
			ORDER BY placed_at, order_no LIMIT ?`, cutoff, afterAt, afterAt, afterNo, cfg.Batch)
		if err != nil {
			return res, shard.Classify(name, err)
		}
		type old struct {
			no       int64
			version  int32
			placedAt time.Time
		}
		page, err := sqlrows.ScanAll(rows, func(rows *sql.Rows) (old, error) {
			var o old
			err := rows.Scan(&o.no, &o.version, &o.placedAt)
			return o, err
		})
		if err != nil {
			return res, shard.Classify(name, err)
		}
		if len(page) == 0 {
			return res, nil
		}
		afterAt, afterNo = page[len(page)-1].placedAt, page[len(page)-1].no
		versions := make(map[int64]int32, len(page))
		nos := make([]int64, len(page))
		for i, o := range page {
			versions[o.no], nos[i] = o.version, o.no
		}
		ready, err := p.settled(ctx, db, name, nos, versions)
		if err != nil {
			return res, err
		}
		if cfg.afterCheck != nil {
			cfg.afterCheck(ctx, name, ready)
		}
		purged := len(ready)
		if len(ready) > 0 && !cfg.DryRun {
			if purged, err = p.delete(ctx, name, ready, versions); err != nil {
				return res, err
			}
		}
		res.Purged += purged
		res.Held += len(nos) - purged
		if progress != nil {
			progress(res)
		}
	}
}

// settled keeps the orders whose document is at their version and whose
// events are all published.
func (p *Purger) settled(ctx context.Context, db *sql.DB, name string, nos []int64, versions map[int64]int32) ([]int64, error) {
	cur, err := p.docs.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: nos}}}},
		options.Find().SetProjection(bson.D{{Key: "version", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("reading documents: %w", err)
	}
	current := map[int64]bool{}
	for cur.Next(ctx) {
		var d struct {
			ID      int64 `bson:"_id"`
			Version int32 `bson:"version"`
		}
		if err := cur.Decode(&d); err != nil {
			_ = cur.Close(ctx)
			return nil, err
		}
		current[d.ID] = d.Version >= versions[d.ID]
	}
	if err := errors.Join(cur.Err(), cur.Close(ctx)); err != nil {
		return nil, fmt.Errorf("reading documents: %w", err)
	}
	in, args := sqlrows.In(nos)
	rows, err := db.QueryContext(ctx, "SELECT DISTINCT order_no FROM outbox WHERE status <> 'PUBLISHED' AND order_no IN ("+in+")", args...)
	if err != nil {
		return nil, shard.Classify(name, err)
	}
	unpublished, err := sqlrows.ScanAll(rows, scanInt64)
	if err != nil {
		return nil, shard.Classify(name, err)
	}
	for _, no := range unpublished {
		current[no] = false
	}
	var ready []int64
	for _, no := range nos {
		if current[no] {
			ready = append(ready, no)
		}
	}
	return ready, nil
}

func scanInt64(rows *sql.Rows) (int64, error) {
	var n int64
	err := rows.Scan(&n)
	return n, err
}

// delete removes the checked orders, their items, history and outbox rows in
// one short transaction on their shard, and returns how many it removed. It
// first locks the orders and their outbox rows (SELECT ... FOR UPDATE, which
// reads the latest committed rows) and keeps back every order that is no
// longer at its checked version or has an unpublished (PENDING or FAILED)
// outbox row: it was changed, or an event of it replayed, after the check,
// and the read side has not seen that yet. order-command changes an order
// under the lock of its row, so nothing changes between this re-check and
// the delete. Locks are taken orders first, then outbox rows, in the same
// order as order-command's changes, so the two do not deadlock.
func (p *Purger) delete(ctx context.Context, name string, nos []int64, versions map[int64]int32) (int, error) {
	var deleted int
	err := p.pools.InTx(ctx, name, sql.LevelDefault, func(ctx context.Context, tx *sql.Tx) error {
		in, args := sqlrows.In(nos)
		rows, err := tx.QueryContext(ctx, "SELECT order_no, version FROM orders WHERE order_no IN ("+in+") ORDER BY order_no FOR UPDATE", args...)
		if err != nil {
			return fmt.Errorf("locking orders: %w", err)
		}
		type locked struct {
			no      int64
			version int32
		}
		current, err := sqlrows.ScanAll(rows, func(rows *sql.Rows) (locked, error) {
			var l locked
			err := rows.Scan(&l.no, &l.version)
			return l, err
		})
		if err != nil {
			return fmt.Errorf("locking orders: %w", err)
		}
		rows, err = tx.QueryContext(ctx, "SELECT order_no FROM outbox WHERE order_no IN ("+in+") AND status <> 'PUBLISHED' FOR UPDATE", args...)
		if err != nil {
			return fmt.Errorf("locking outbox rows: %w", err)
		}
		unpublished, err := sqlrows.ScanAll(rows, scanInt64)
		if err != nil {
			return fmt.Errorf("locking outbox rows: %w", err)
		}
		held := make(map[int64]bool, len(unpublished))
		for _, no := range unpublished {
			held[no] = true
		}
		var keep []int64
		for _, l := range current {
			if l.version == versions[l.no] && !held[l.no] {
				keep = append(keep, l.no)
			}
		}
		if len(keep) == 0 {
			return nil
		}
		in, args = sqlrows.In(keep)
		for _, table := range []string{"order_items", "order_status_history", "outbox", "orders"} {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE order_no IN ("+in+")", args...); err != nil {
				return fmt.Errorf("deleting from %s: %w", table, err)
			}
		}
		deleted = len(keep)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("deleting %d orders: %w", len(nos), err)
	}
	return deleted, nil
}

// EpochStatus says whether an epoch still has orders on the write side.
type EpochStatus struct {
	FirstOrderNo int64
	// Limit is the next epoch's first order number, 0 for the current one.
	Limit  int64
	Orders int64
	// Retirable is true for an old epoch with no order left: its entry can
	// be removed from the topology.
	Retirable bool
}

// Epochs counts, per epoch, the orders still on the shards.
func (p *Purger) Epochs(ctx context.Context) ([]EpochStatus, error) {
	topo := p.pools.Topology()
	out := make([]EpochStatus, len(topo.Epochs))
	for i, e := range topo.Epochs {
		st := EpochStatus{FirstOrderNo: e.FirstOrderNo}
		if i+1 < len(topo.Epochs) {
			st.Limit = topo.Epochs[i+1].FirstOrderNo
		}
		for _, name := range e.Shards {
			db, err := p.pools.DB(name)
			if err != nil {
				return nil, err
			}
			q, args := "SELECT COUNT(*) FROM orders WHERE order_no >= ?", []any{e.FirstOrderNo}
			if st.Limit > 0 {
				q, args = q+" AND order_no < ?", append(args, st.Limit)
			}
			var n int64
			if err := db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
				return nil, shard.Classify(name, err)
			}
			st.Orders += n
		}
		st.Retirable = st.Limit > 0 && st.Orders == 0
		out[i] = st
	}
	return out, nil
}
