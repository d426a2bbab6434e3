package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/orderflow/orderflow/services/order-command/internal/service"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// Each setting is checked once, by the constructor that uses it (the shard
// pools, the number allocator, the use cases); New still refuses every bad
// value at start.
func TestNewRejectsConfig(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 1)
	tests := []struct {
		name     string
		change   func(*service.Config, *shard.Topology)
		wantText string
	}{
		{name: "block size zero", change: func(c *service.Config, _ *shard.Topology) { c.OrderNoBlockSize = 0 }, wantText: "ORDERFLOW_ORDER_NO_BLOCK_SIZE"},
		{name: "cancel window past the shortest retention", change: func(c *service.Config, _ *shard.Topology) { c.CancelWindow = 31 * 24 * time.Hour }, wantText: "cancel window"},
		{name: "negative place group size", change: func(c *service.Config, _ *shard.Topology) { c.PlaceGroup.Max = -1 }, wantText: "ORDERFLOW_PLACE_GROUP_"},
		{name: "no shard connections", change: func(c *service.Config, _ *shard.Topology) { c.Shard.MaxOpenConns = 0 }, wantText: "MAX_OPEN_CONNS"},
		{name: "tiny body limit", change: func(c *service.Config, _ *shard.Topology) { c.MaxBodyBytes = 10 }, wantText: "ORDERFLOW_MAX_BODY_BYTES"},
		{name: "topology without epochs", change: func(_ *service.Config, t *shard.Topology) { t.Epochs = nil }, wantText: "no epochs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.StartupTimeout = 5 * time.Second
			tp := topo
			tc.change(&cfg, &tp)
			svc, err := newService(t, cfg, tp)
			if err == nil {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				_ = svc.Run(ctx)
				t.Fatal("New accepted the configuration")
			}
			if !contains(err.Error(), tc.wantText) {
				t.Errorf("error = %v, want it to mention %q", err, tc.wantText)
			}
		})
	}
}
