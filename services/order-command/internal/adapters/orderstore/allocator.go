package orderstore

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/orderflow/orderflow/shared/shard"
)

// ErrEpochExhausted is shard.ErrEpochExhausted.
var ErrEpochExhausted = shard.ErrEpochExhausted

// Allocator hands out order numbers without a database round trip per
// order. Each (epoch, shard) has a sequence row on that shard holding the
// next number of the shard's residue class; an instance reserves a block of
// blockSize numbers (NewAllocator) at a time and fetches the next block in the background
// when a quarter of the current one is left, so a short outage of the
// sequence does not stop orders while numbers remain. Numbers of a block
// that a crashed instance never used are skipped, never reused.
type Allocator struct {
	pools     *shard.Pools
	blockSize int64
	logger    *slog.Logger

	mu     sync.Mutex
	ranges map[allocKey]*numberRange
}

type allocKey struct {
	epochFirst int64
	shard      string
}

// numberRange is the numbers an instance holds for one (epoch, shard).
type numberRange struct {
	mu       sync.Mutex
	next     int64 // next number to hand out
	end      int64 // first number not in the current block
	spare    *block
	fetching chan struct{} // closed when the background reservation ends
}

type block struct{ first, end int64 }

// prefetchTimeout bounds a background reservation, which has no caller
// deadline of its own.
const prefetchTimeout = 10 * time.Second

// NewAllocator returns an allocator reserving blockSize numbers at a time.
func NewAllocator(pools *shard.Pools, blockSize int, logger *slog.Logger) (*Allocator, error) {
	if blockSize < 1 {
		return nil, fmt.Errorf("order number block size must be at least 1, got %d", blockSize)
	}
	return &Allocator{pools: pools, blockSize: int64(blockSize), logger: logger, ranges: map[allocKey]*numberRange{}}, nil
}

// Next returns a fresh order number that routes to loc in topo. topo is
// the caller's snapshot, the one loc was taken from: the pools' topology may
// have changed since (an epoch added or retired).
func (a *Allocator) Next(ctx context.Context, topo shard.Topology, loc shard.Location) (int64, error) {
	numbers, err := topo.Numbers(loc)
	if err != nil {
		return 0, err
	}
	nr := a.rangeFor(loc)
	nr.mu.Lock()
	defer nr.mu.Unlock()
	for nr.next >= nr.end {
		switch {
		case nr.spare != nil:
			nr.next, nr.end, nr.spare = nr.spare.first, nr.spare.end, nil
		case nr.fetching != nil:
			// A block is already on its way: wait for it rather than
			// reserving a second one next to it.
			done := nr.fetching
			nr.mu.Unlock()
			select {
			case <-done:
			case <-ctx.Done():
			}
			nr.mu.Lock()
			if err := ctx.Err(); err != nil {
				return 0, err
			}
		default:
			b, err := a.reserve(ctx, loc, numbers)
			if err != nil {
				return 0, err
			}
			nr.next, nr.end = b.first, b.end
		}
	}
	n := nr.next
	nr.next += numbers.Step
	if left := (nr.end - nr.next) / numbers.Step; left <= a.blockSize/4 && nr.spare == nil && nr.fetching == nil {
		nr.fetching = make(chan struct{})
		go a.prefetch(context.WithoutCancel(ctx), nr, loc, numbers)
	}
	return n, nil
}

func (a *Allocator) rangeFor(loc shard.Location) *numberRange {
	key := allocKey{epochFirst: loc.EpochFirstOrderNo, shard: loc.Shard}
	a.mu.Lock()
	defer a.mu.Unlock()
	nr, ok := a.ranges[key]
	if !ok {
		nr = &numberRange{}
		a.ranges[key] = nr
	}
	return nr
}

func (a *Allocator) prefetch(ctx context.Context, nr *numberRange, loc shard.Location, numbers shard.NumberRange) {
	ctx, cancel := context.WithTimeout(ctx, prefetchTimeout)
	defer cancel()
	b, err := a.reserve(ctx, loc, numbers)
	nr.mu.Lock()
	defer nr.mu.Unlock()
	close(nr.fetching)
	nr.fetching = nil
	if err != nil {
		a.logger.WarnContext(ctx, "prefetching order numbers failed", slog.String("shard", loc.Shard), slog.Any("error", err))
		return
	}
	nr.spare = &b
}

// reserve moves the shard's sequence forward by one block in a transaction
// and returns the block.
func (a *Allocator) reserve(ctx context.Context, loc shard.Location, numbers shard.NumberRange) (block, error) {
	var b block
	err := a.pools.InTx(ctx, loc.Shard, sql.LevelDefault, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO order_no_sequence (epoch_first_order_no, shard_index, shard_count, next_order_no)
			VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE epoch_first_order_no = epoch_first_order_no`,
			numbers.EpochFirstOrderNo, loc.Index, loc.Count, numbers.First); err != nil {
			return fmt.Errorf("creating order number sequence: %w", err)
		}
		var next int64
		var index, count int
		var stored sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT next_order_no, shard_index, shard_count, limit_order_no FROM order_no_sequence
			WHERE epoch_first_order_no = ? FOR UPDATE`, numbers.EpochFirstOrderNo).Scan(&next, &index, &count, &stored); err != nil {
			return fmt.Errorf("reading order number sequence: %w", err)
		}
		if index != loc.Index || count != loc.Count {
			return fmt.Errorf("shard %s holds the sequence of shard %d of %d for epoch %d, but the topology says %d of %d",
				loc.Shard, index, count, numbers.EpochFirstOrderNo, loc.Index, loc.Count)
		}
		// The limit is the next epoch's first number: from the topology, or
		// from the sequence row, where adding a shard writes it before any
		// instance has loaded the new topology.
		limit := numbers.Limit
		if stored.Valid && (limit == 0 || stored.Int64 < limit) {
			limit = stored.Int64
		}
		end := next + a.blockSize*numbers.Step
		if limit > 0 {
			if next >= limit {
				return fmt.Errorf("%w: epoch %d, shard %s", ErrEpochExhausted, numbers.EpochFirstOrderNo, loc.Shard)
			}
			end = min(end, limit)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE order_no_sequence SET next_order_no = ? WHERE epoch_first_order_no = ?",
			end, numbers.EpochFirstOrderNo); err != nil {
			return fmt.Errorf("advancing order number sequence: %w", err)
		}
		b = block{first: next, end: end}
		return nil
	})
	if err != nil {
		return block{}, fmt.Errorf("reserving order numbers on %s: %w", loc.Shard, err)
	}
	return b, nil
}
