package shard

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// AddShard plans adding a shard: a new epoch over the current epoch's shards
// plus spec, starting headroom above the highest order number any shard of
// the current epoch has handed out (or reserved). Before it returns, it
// writes that first number as the limit into every current shard's number
// sequence, so no instance, not even one still on the old topology, hands out
// a number that would route to the new epoch. The new shard must already
// carry the schema. The caller publishes the returned topology (WriteTopology).
func AddShard(ctx context.Context, pools *Pools, spec Spec, headroom int64) (Topology, error) {
	cur := pools.Topology()
	if spec.Name == "" || spec.DSN == "" {
		return Topology{}, fmt.Errorf("the new shard needs a name and a dsn")
	}
	if _, ok := cur.DSN(spec.Name); ok {
		return Topology{}, fmt.Errorf("shard %q is already in the topology", spec.Name)
	}
	if headroom < 1 {
		return Topology{}, fmt.Errorf("headroom must be positive")
	}
	epoch := cur.Epochs[cur.Current()]
	var highest int64
	for i, name := range epoch.Shards {
		numbers, err := cur.Numbers(Location{Shard: name, EpochFirstOrderNo: epoch.FirstOrderNo, Index: i, Count: len(epoch.Shards)})
		if err != nil {
			return Topology{}, err
		}
		db, err := pools.DB(name)
		if err != nil {
			return Topology{}, err
		}
		next := numbers.First
		err = db.QueryRowContext(ctx, "SELECT next_order_no FROM order_no_sequence WHERE epoch_first_order_no = ?", epoch.FirstOrderNo).Scan(&next)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return Topology{}, Classify(name, fmt.Errorf("reading the order number sequence: %w", err))
		}
		highest = max(highest, next)
	}
	first := highest + headroom
	for i, name := range epoch.Shards {
		numbers, err := cur.Numbers(Location{Shard: name, EpochFirstOrderNo: epoch.FirstOrderNo, Index: i, Count: len(epoch.Shards)})
		if err != nil {
			return Topology{}, err
		}
		err = pools.InTx(ctx, name, sql.LevelDefault, func(ctx context.Context, tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO order_no_sequence (epoch_first_order_no, shard_index, shard_count, next_order_no, limit_order_no)
				VALUES (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE limit_order_no = VALUES(limit_order_no)`,
				epoch.FirstOrderNo, i, len(epoch.Shards), numbers.First, first); err != nil {
				return fmt.Errorf("limiting the order number sequence: %w", err)
			}
			var next int64
			if err := tx.QueryRowContext(ctx, "SELECT next_order_no FROM order_no_sequence WHERE epoch_first_order_no = ?",
				epoch.FirstOrderNo).Scan(&next); err != nil {
				return err
			}
			if next > first {
				return fmt.Errorf("numbers up to %d were reserved meanwhile; use a larger headroom than %d", next, headroom)
			}
			return nil
		})
		if err != nil {
			return Topology{}, fmt.Errorf("shard %s: %w", name, err)
		}
	}
	now := time.Now().UTC()
	next := Topology{
		Shards: append(slices.Clone(cur.Shards), spec),
		Epochs: append(slices.Clone(cur.Epochs), Epoch{FirstOrderNo: first, Shards: append(slices.Clone(epoch.Shards), spec.Name), AddedAt: &now}),
	}
	if err := next.Validate(); err != nil {
		return Topology{}, err
	}
	return next, nil
}

// WriteTopology replaces the topology file atomically (write, then rename),
// so a service reloading it never reads half a file.
func WriteTopology(path string, t Topology) error {
	data, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".topology-*.json")
	if err != nil {
		return fmt.Errorf("writing topology: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("writing topology: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("replacing topology: %w", err)
	}
	return nil
}
