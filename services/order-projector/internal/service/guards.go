package service

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/orderflow/orderflow/services/order-projector/internal/failure"
	"github.com/orderflow/orderflow/shared/projection"
	"github.com/orderflow/orderflow/shared/projection/source"
	"github.com/orderflow/orderflow/shared/shard"
)

// shardSource reads a batch's orders shard by shard, each query under its
// own deadline: a hung shard (a stopped process still accepts connections
// and then answers nothing) fails its read within the deadline, as an
// outage of that shard, instead of holding the batch for the I/O timeout.
type shardSource struct {
	pools   *shard.Pools
	reader  *source.Reader
	timeout time.Duration
}

// Read implements projection.Source.
func (s shardSource) Read(ctx context.Context, orderNos []int64) (map[int64]source.Order, error) {
	topo := s.pools.Topology()
	byShard := map[string][]int64{}
	for _, no := range orderNos {
		loc, err := topo.Route(no)
		if err != nil {
			continue // below every epoch: no shard can hold it
		}
		byShard[loc.Shard] = append(byShard[loc.Shard], no)
	}
	out := make(map[int64]source.Order, len(orderNos))
	for name, nos := range byShard {
		orders, err := s.readShard(ctx, nos)
		if err != nil {
			return nil, failure.In(failure.Shard, fmt.Errorf("shard %s: %w", name, err))
		}
		maps.Copy(out, orders)
	}
	return out, nil
}

func (s shardSource) readShard(ctx context.Context, nos []int64) (map[int64]source.Order, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.reader.Read(ctx, nos) // the numbers of one shard: one query
}

// mongoStore bounds every MongoDB operation of the projector by a deadline
// and marks its errors as MongoDB's.
type mongoStore struct {
	store   projection.Store
	timeout time.Duration
}

// States implements projection.Store.
func (s mongoStore) States(ctx context.Context, orderNos []int64) (map[int64]projection.DocState, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	states, err := s.store.States(ctx, orderNos)
	return states, failure.In(failure.MongoDB, err)
}

// Write implements projection.Store.
func (s mongoStore) Write(ctx context.Context, w projection.Write) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	conflicts, err := s.store.Write(ctx, w)
	return conflicts, failure.In(failure.MongoDB, err)
}
