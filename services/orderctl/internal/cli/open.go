package cli

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orderflow/orderflow/shared/mongox"
	"github.com/orderflow/orderflow/shared/shard"
)

// openShards opens small pools to every shard of the topology file: the
// commands run a few statements at a time.
func openShards(topology string) (*shard.Pools, error) {
	topo, err := shard.LoadTopology(topology)
	if err != nil {
		return nil, err
	}
	return shard.Open(topo, shard.PoolConfig{MaxOpenConns: 4, MaxIdleConns: 4, ConnMaxLifetime: time.Minute,
		DialTimeout: 3 * time.Second, IOTimeout: time.Minute})
}

// openWithReadSide opens the shards and the read side's MongoDB database;
// closeAll releases both.
func openWithReadSide(ctx context.Context, topology, mongoURI, database string) (*shard.Pools, *mongo.Database, func(), error) {
	pools, err := openShards(topology)
	if err != nil {
		return nil, nil, nil, err
	}
	client, err := mongox.Connect(ctx, mongoURI)
	if err != nil {
		_ = pools.Close()
		return nil, nil, nil, err
	}
	closeAll := func() {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		_ = pools.Close()
	}
	return pools, client.Database(database), closeAll, nil
}
