// Package lifecycle ends an order's life on the write side: orders older than
// the retention (30 days by default: an order can only be cancelled within
// 30 days) are removed from their shard in small batches, and only once the
// read side holds the order's latest version and every event of it was
// published, so nothing that is still needed is deleted. The MongoDB
// documents stay as history. Removing old orders is also what evens out the
// shards after one is added: the data of the old epochs simply ages out.
package lifecycle

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orderflow/orderflow/shared/orderdoc"
	"github.com/orderflow/orderflow/shared/shard"
)

// PurgeConfig says what to purge.
type PurgeConfig struct {
	// Retention: orders placed more than this before Now are purged.
	Retention time.Duration
	// Now is the clock's reading (injectable for tests and simulations).
	Now time.Time
	// Batch is how many orders one delete transaction removes at most.
	Batch int
	// DryRun only counts.
	DryRun bool
}

// ShardResult is what happened on one shard.
type ShardResult struct {
	Shard  string
	Purged int
	// Held are old orders kept because the read side is behind or an event
	// was not published yet; a later run takes them.
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
	if cfg.Retention <= 0 || cfg.Batch < 1 {
		return nil, errors.New("purge: retention and batch must be positive")
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
		versions := map[int64]int32{}
		var nos []int64
		for rows.Next() {
			var no int64
			var v int32
			if err := rows.Scan(&no, &v, &afterAt); err != nil {
				rows.Close()
				return res, err
			}
			afterNo = no
			versions[no] = v
			nos = append(nos, no)
		}
		if err := rows.Close(); err != nil {
			return res, shard.Classify(name, err)
		}
		if len(nos) == 0 {
			return res, nil
		}
		ready, err := p.settled(ctx, db, name, nos, versions)
		if err != nil {
			return res, err
		}
		res.Held += len(nos) - len(ready)
		if len(ready) > 0 && !cfg.DryRun {
			if err := p.delete(ctx, name, ready); err != nil {
				return res, err
			}
		}
		res.Purged += len(ready)
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
	in, args := inList(nos)
	rows, err := db.QueryContext(ctx, "SELECT DISTINCT order_no FROM outbox WHERE status <> 'PUBLISHED' AND order_no IN ("+in+")", args...)
	if err != nil {
		return nil, shard.Classify(name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var no int64
		if err := rows.Scan(&no); err != nil {
			return nil, err
		}
		current[no] = false
	}
	if err := rows.Err(); err != nil {
		return nil, shard.Classify(name, err)
	}
	var ready []int64
	for _, no := range nos {
		if current[no] {
			ready = append(ready, no)
		}
	}
	return ready, nil
}

// delete removes the orders, their items, history and outbox rows in one
// short transaction on their shard.
func (p *Purger) delete(ctx context.Context, name string, nos []int64) error {
	in, args := inList(nos)
	var b shard.Batch
	for _, table := range []string{"order_items", "order_status_history", "outbox", "orders"} {
		b.Add("DELETE FROM "+table+" WHERE order_no IN ("+in+")", args...)
	}
	if err := p.pools.ExecAtomic(ctx, name, &b); err != nil {
		return fmt.Errorf("deleting %d orders: %w", len(nos), err)
	}
	return nil
}

func inList(nos []int64) (string, []any) {
	args := make([]any, len(nos))
	for i, no := range nos {
		args[i] = no
	}
	return strings.TrimSuffix(strings.Repeat("?,", len(nos)), ","), args
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
