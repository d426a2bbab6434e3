package service_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/services/outbox-relay/internal/service"
	"github.com/orderflow/orderflow/shared/config"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// The relay's retention is the PUBLISHED outbox rows', under a name that
// says so; the orders' retention is the projector's.
func TestConfigOutboxRetention(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want time.Duration
	}{
		{name: "default", env: map[string]string{}, want: 168 * time.Hour},
		{name: "set", env: map[string]string{"ORDERFLOW_OUTBOX_RETENTION": "24h"}, want: 24 * time.Hour},
		{name: "the old name is not read", env: map[string]string{"ORDERFLOW_RELAY_RETENTION": "24h"}, want: 168 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.env["ORDERFLOW_ADMIN_TOKEN"] = token
			cfg, err := config.LoadFrom[service.Config](tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.OutboxRetention != tc.want {
				t.Errorf("OutboxRetention = %s, want %s", cfg.OutboxRetention, tc.want)
			}
		})
	}
}

// Each setting is checked once, by the constructor that uses it; New
// reports it by its variable, before it serves anything.
func TestNewRejectsConfig(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 1)
	tests := []struct {
		name     string
		change   func(*service.Config)
		wantText string
	}{
		{name: "no admin token", change: func(c *service.Config) { c.AdminToken = "" }, wantText: "ORDERFLOW_ADMIN_TOKEN"},
		{name: "admin token of 31 characters", change: func(c *service.Config) { c.AdminToken = strings.Repeat("t", 31) }, wantText: "at least 32 characters"},
		{name: "write timeout under the request timeout", change: func(c *service.Config) { c.AdminHTTP.WriteTimeout = c.RequestTimeout }, wantText: "ORDERFLOW_ADMIN_HTTP_*"},
		{name: "negative gRPC keepalive", change: func(c *service.Config) { c.AdminGRPC.KeepaliveMinTime = -time.Second }, wantText: "KEEPALIVE_MIN_TIME"},
		{name: "no topic", change: func(c *service.Config) { c.Topic = "" }, wantText: "ORDERFLOW_RELAY_TOPIC"},
		{name: "zero batch size", change: func(c *service.Config) { c.BatchSize = 0 }, wantText: "batch size"},
		{name: "retry max below base", change: func(c *service.Config) { c.RetryMax = c.RetryBase / 2 }, wantText: "ORDERFLOW_RELAY_*"},
		{name: "zero outbox retention", change: func(c *service.Config) { c.OutboxRetention = 0 }, wantText: "retention"},
		{name: "no shard connections", change: func(c *service.Config) { c.Shard.MaxOpenConns = 0 }, wantText: "MAX_OPEN_CONNS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig("orders.config-test", testinfra.KafkaBrokers())
			tc.change(&cfg)
			svc, err := service.New(context.Background(), cfg, topo, slog.New(slog.NewJSONHandler(io.Discard, nil)))
			if err == nil {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				_ = svc.Run(ctx)
				t.Fatal("New accepted the configuration")
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error = %v, want it to mention %s", err, tc.wantText)
			}
		})
	}
}
