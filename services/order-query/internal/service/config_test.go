package service_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/services/order-query/internal/service"
	"github.com/orderflow/orderflow/shared/auth"
	"github.com/orderflow/orderflow/shared/config"
	"github.com/orderflow/orderflow/shared/server"
	"github.com/orderflow/orderflow/shared/shard"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := config.LoadFrom[service.Config](map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	want := service.Config{
		GRPCAddr: "127.0.0.1:9091", HTTPAddr: "127.0.0.1:8081",
		MongoURI: "mongodb://127.0.0.1:27017", MongoDatabase: "orderflow", LogLevel: "info",
		MinVersionWait: 2 * time.Second, MaxWaitingReads: 2000, WaitPollBatch: 500, RequestTimeout: 5 * time.Second, StartupTimeout: 30 * time.Second,
		ShutdownTimeout: 20 * time.Second, MaxBodyBytes: 65536, Profiling: false,
		// The environment's defaults are the ones code gets for zero fields.
		HTTP: server.HTTPConfig{}.WithDefaults(), GRPC: server.GRPCConfig{KeepalivePermitWithoutStream: true}.WithDefaults(),
		// No topology: no shard is asked whether an order exists.
		TopologyFile: "", TopologyReload: time.Second,
		Shard: shard.PoolConfig{MaxOpenConns: 64, MaxIdleConns: 64, ConnMaxLifetime: 5 * time.Minute, DialTimeout: time.Second,
			IOTimeout: 10 * time.Second, StatementTimeout: 800 * time.Millisecond, TxTimeout: 900 * time.Millisecond,
			BreakerFailures: 5, BreakerQuiet: time.Second, BreakerOpenTimeout: time.Second, BreakerProbes: 1},
		// Authentication on, with the local issuer and audience; no JWK Set
		// is a default, so New refuses to start without one.
		Auth: auth.Settings{Issuer: auth.LocalIssuer, Audience: auth.DefaultAudience, Leeway: 30 * time.Second,
			PlaceOrderRate: 5, PlaceOrderBurst: 20, TokenCacheSize: 10_000, TokenCacheTTL: time.Minute},
	}
	if cfg != want {
		t.Errorf("defaults\n%+v\nwant\n%+v", cfg, want)
	}
}

func TestConfigRejected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      map[string]string
		wantText string
	}{
		{"unparsable wait", map[string]string{"ORDERFLOW_MIN_VERSION_WAIT": "soon"}, "ORDERFLOW_MIN_VERSION_WAIT"},
		{"negative wait", map[string]string{"ORDERFLOW_MIN_VERSION_WAIT": "-1s"}, "ORDERFLOW_MIN_VERSION_WAIT"},
		{"zero request timeout", map[string]string{"ORDERFLOW_REQUEST_TIMEOUT": "0s"}, "ORDERFLOW_REQUEST_TIMEOUT"},
		{"no waiting reads", map[string]string{"ORDERFLOW_MAX_WAITING_READS": "0"}, "ORDERFLOW_MAX_WAITING_READS"},
		{"negative waiting reads", map[string]string{"ORDERFLOW_MAX_WAITING_READS": "-5"}, "ORDERFLOW_MAX_WAITING_READS"},
		{"empty poll batch", map[string]string{"ORDERFLOW_WAIT_POLL_BATCH": "0"}, "ORDERFLOW_WAIT_POLL_BATCH"},
		{"negative topology reload", map[string]string{"ORDERFLOW_TOPOLOGY_RELOAD": "-1s"}, "ORDERFLOW_TOPOLOGY_RELOAD"},
		{"topology file missing", map[string]string{"ORDERFLOW_TOPOLOGY_FILE": "/nonexistent/topology.json",
			"ORDERFLOW_MONGO_URI": "mongodb://127.0.0.1:1", "ORDERFLOW_STARTUP_TIMEOUT": "300ms", "ORDERFLOW_AUTH_DISABLED": "true"}, "ORDERFLOW_TOPOLOGY_FILE"},
		{"tiny body limit", map[string]string{"ORDERFLOW_MAX_BODY_BYTES": "10"}, "ORDERFLOW_MAX_BODY_BYTES"},
		{"pprof not a boolean", map[string]string{"ORDERFLOW_PPROF": "maybe"}, "ORDERFLOW_PPROF"},
		{"write timeout not above the request timeout", map[string]string{"ORDERFLOW_HTTP_WRITE_TIMEOUT": "5s"}, "ORDERFLOW_HTTP_*"},
		{"unparsable read timeout", map[string]string{"ORDERFLOW_HTTP_READ_TIMEOUT": "slow"}, "ORDERFLOW_HTTP_READ_TIMEOUT"},
		{"unparsable stream limit", map[string]string{"ORDERFLOW_GRPC_MAX_CONCURRENT_STREAMS": "-1"}, "ORDERFLOW_GRPC_MAX_CONCURRENT_STREAMS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Parsing refuses what does not parse; New refuses the rest,
			// before it connects to anything.
			cfg, err := config.LoadFrom[service.Config](tc.env)
			if err == nil {
				_, err = service.New(context.Background(), cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error = %v, want one naming %s", err, tc.wantText)
			}
		})
	}
}

func TestNewFailsWithoutMongo(t *testing.T) {
	t.Parallel()
	cfg, err := config.LoadFrom[service.Config](map[string]string{
		"ORDERFLOW_MONGO_URI": "mongodb://127.0.0.1:1", "ORDERFLOW_STARTUP_TIMEOUT": "300ms",
		"ORDERFLOW_GRPC_ADDR": "127.0.0.1:0", "ORDERFLOW_HTTP_ADDR": "127.0.0.1:0", "ORDERFLOW_AUTH_DISABLED": "true",
	})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(context.Background(), cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err == nil {
		t.Fatalf("New succeeded without MongoDB: %v", svc.HTTPAddr())
	}
	if !strings.Contains(err.Error(), "mongodb") {
		t.Errorf("error = %v, want it to name mongodb", err)
	}
}
