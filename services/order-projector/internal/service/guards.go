package service

import (
	"context"
	"time"

	"github.com/orderflow/orderflow/services/order-projector/internal/failure"
	"github.com/orderflow/orderflow/shared/projection"
	"github.com/orderflow/orderflow/shared/projection/source"
)

// shardSource marks the re-read's errors as the shards': each shard query
// runs through its shard's circuit breaker and statement deadline
// (ORDERFLOW_SHARD_STATEMENT_TIMEOUT), so a hung shard (a stopped process
// still accepts connections and then answers nothing) fails its read in
// time, as an outage of that shard, instead of holding the batch for the
// I/O timeout.
type shardSource struct {
	reader *source.Reader
}

// Read implements projection.Source.
func (s shardSource) Read(ctx context.Context, orderNos []int64) (map[int64]source.Order, error) {
	orders, err := s.reader.Read(ctx, orderNos)
	return orders, failure.In(failure.Shard, err)
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
