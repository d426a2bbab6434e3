// Package service wires the outbox relay: configuration, shard pools, the
// Kafka publisher, the relay loops, and the admin API.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/orderflow/orderflow/services/outbox-relay/internal/adapters/lease"
	"github.com/orderflow/orderflow/services/outbox-relay/internal/adapters/publisher"
	"github.com/orderflow/orderflow/services/outbox-relay/internal/ports"
	"github.com/orderflow/orderflow/services/outbox-relay/internal/relay"
	"github.com/orderflow/orderflow/shared/auth"
	"github.com/orderflow/orderflow/shared/auth/authgrpc"
	"github.com/orderflow/orderflow/shared/gen"
	outboxv1 "github.com/orderflow/orderflow/shared/gen/orderflow/outbox/v1"
	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/observability"
	"github.com/orderflow/orderflow/shared/outbox"
	"github.com/orderflow/orderflow/shared/server"
	"github.com/orderflow/orderflow/shared/shard"
)

// Config is the relay's configuration, read from ORDERFLOW_* variables.
type Config struct {
	// RelayID names this instance in ownership records; default host-pid.
	RelayID string `env:"RELAY_ID"`
	// TopologyFile is the JSON list of shards and shard epochs.
	TopologyFile string `env:"TOPOLOGY_FILE" envDefault:".state/topology.json"`
	// KafkaBrokers are the bootstrap servers, comma-separated.
	KafkaBrokers string `env:"KAFKA_BROKERS" envDefault:"127.0.0.1:19092"`
	// Topic receives the internal events.
	Topic string `env:"RELAY_TOPIC" envDefault:"orders.internal.v1"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`
	// Shard sizes each shard's connection pool (ORDERFLOW_SHARD_*).
	Shard shard.PoolConfig `envPrefix:"SHARD_"`

	// BatchSize is the most rows published at once per shard.
	BatchSize int `env:"RELAY_BATCH_SIZE" envDefault:"1000"`
	// IdleWait is the pause after a poll that found nothing.
	IdleWait time.Duration `env:"RELAY_IDLE_WAIT" envDefault:"20ms"`
	// Linger is the pause after a batch smaller than RELAY_BATCH_SIZE, so
	// that batches gather the rows of that time (0: poll again at once).
	// 100ms: every batch costs the shard a claim, an update and a commit
	// and Kafka a produce request. With the projector's 50ms batch linger,
	// 100ms against 20ms cut the whole pipeline's CPU per order by 10-14 %
	// at 400-500 orders/s, for about 90ms more freshness at the median
	// (docs/performance.md, "Batching for CPU").
	Linger time.Duration `env:"RELAY_LINGER" envDefault:"100ms"`
	// AcquireInterval is how often an unowned shard is tried: the fail-over time.
	AcquireInterval time.Duration `env:"RELAY_ACQUIRE_INTERVAL" envDefault:"1s"`
	// HeartbeatInterval is how often an owned shard's lease is checked.
	HeartbeatInterval time.Duration `env:"RELAY_HEARTBEAT_INTERVAL" envDefault:"2s"`
	// MaxAttempts failed publishes park a row as FAILED.
	MaxAttempts int32 `env:"RELAY_MAX_ATTEMPTS" envDefault:"10"`
	// RetryBase and RetryMax bound the per-row exponential back-off.
	RetryBase time.Duration `env:"RELAY_RETRY_BASE" envDefault:"1s"`
	RetryMax  time.Duration `env:"RELAY_RETRY_MAX" envDefault:"5m"`
	// OutageMaxWait is the step the waits grow to while Kafka cannot take
	// rows or a shard cannot be reached; a single wait, drawn within ±50 %
	// of its step, can reach 1.5 × OutageMaxWait (relay.Config).
	OutageMaxWait time.Duration `env:"RELAY_OUTAGE_MAX_WAIT" envDefault:"5s"`
	// OutboxRetention keeps PUBLISHED outbox rows this long before cleanup
	// deletes them.
	OutboxRetention time.Duration `env:"OUTBOX_RETENTION" envDefault:"168h"`
	// CleanupInterval and CleanupBatch pace the deletes.
	CleanupInterval time.Duration `env:"RELAY_CLEANUP_INTERVAL" envDefault:"1m"`
	CleanupBatch    int           `env:"RELAY_CLEANUP_BATCH" envDefault:"1000"`
	// BacklogInterval is how often the backlog gauges are refreshed.
	BacklogInterval time.Duration `env:"RELAY_BACKLOG_INTERVAL" envDefault:"5s"`

	// AdminGRPCAddr and AdminHTTPAddr are the admin API's ports.
	AdminGRPCAddr string `env:"ADMIN_GRPC_ADDR" envDefault:"127.0.0.1:9092"`
	AdminHTTPAddr string `env:"ADMIN_HTTP_ADDR" envDefault:"127.0.0.1:8082"`
	// AdminToken is the shared bearer token that passes every admin call.
	// Required.
	AdminToken string `env:"ADMIN_TOKEN,required"`
	// Auth verifies operators' JWTs (ORDERFLOW_AUTH_*), which pass every
	// admin call as the admin token does; users' and shops' are refused.
	// On by default: without ORDERFLOW_AUTH_JWKS_FILE or _JWKS_URL the relay
	// refuses to start unless ORDERFLOW_AUTH_DISABLED=true, with which only
	// the admin token passes.
	Auth auth.Settings `envPrefix:"AUTH_"`
	// RequestTimeout bounds one admin call, gRPC or REST (the server chain's
	// deadline); a replay has no bound.
	RequestTimeout time.Duration `env:"REQUEST_TIMEOUT" envDefault:"30s"`
	// ShutdownTimeout bounds the drain on SIGTERM.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"20s"`
	// Profiling serves /debug/pprof/ on the admin HTTP port.
	Profiling bool `env:"PPROF" envDefault:"false"`
	// TopologyReload is how often the topology file is checked for a new
	// shard; 0 turns reloading off.
	TopologyReload time.Duration `env:"TOPOLOGY_RELOAD" envDefault:"1s"`
	// AdminHTTP bounds the admin HTTP port's connections
	// (ORDERFLOW_ADMIN_HTTP_READ_TIMEOUT, _READ_HEADER_TIMEOUT,
	// _WRITE_TIMEOUT, _IDLE_TIMEOUT, _MAX_HEADER_BYTES). A replay has no
	// deadline: one over REST that outlasts the write timeout still
	// commits, but its answer is lost.
	AdminHTTP server.HTTPConfig `envPrefix:"ADMIN_HTTP_"`
	// AdminGRPC bounds the admin gRPC port's connections
	// (ORDERFLOW_ADMIN_GRPC_MAX_CONCURRENT_STREAMS, _KEEPALIVE_*,
	// _MAX_CONNECTION_IDLE).
	AdminGRPC server.GRPCConfig `envPrefix:"ADMIN_GRPC_"`
}

// Validate checks what parsing does not and no constructor New calls
// checks itself: the relay's settings are checked by relay.New, the shard
// pools by shard.Open and the admin token by ports.NewAuth, once each.
func (c *Config) Validate() error {
	var errs []error
	if c.Topic == "" || c.KafkaBrokers == "" {
		errs = append(errs, errors.New("ORDERFLOW_RELAY_TOPIC and ORDERFLOW_KAFKA_BROKERS must not be empty"))
	}
	if err := c.AdminHTTP.ValidateFor(c.RequestTimeout); err != nil {
		errs = append(errs, fmt.Errorf("ORDERFLOW_ADMIN_HTTP_*: %w", err))
	}
	if err := c.Auth.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c *Config) relayConfig() relay.Config {
	return relay.Config{BatchSize: c.BatchSize, IdleWait: c.IdleWait, Linger: c.Linger, AcquireInterval: c.AcquireInterval,
		HeartbeatInterval: c.HeartbeatInterval, MaxAttempts: c.MaxAttempts, RetryBase: c.RetryBase, RetryMax: c.RetryMax,
		OutageMaxWait: c.OutageMaxWait, OutboxRetention: c.OutboxRetention, CleanupInterval: c.CleanupInterval, CleanupBatch: c.CleanupBatch}
}

// Service is a running relay.
type Service struct {
	cfg       Config
	logger    *slog.Logger
	pools     *shard.Pools
	publisher *publisher.Publisher
	relay     *relay.Relay
	metrics   *relay.Metrics
	store     *outbox.Store
	server    *server.Server
	tracing   *observability.Tracing
}

// New builds the relay and binds the admin ports.
func New(ctx context.Context, cfg Config, topo shard.Topology, logger *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	if cfg.RelayID == "" {
		host, _ := os.Hostname()
		cfg.RelayID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	pools, err := shard.Open(topo, cfg.Shard)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = pools.Close()
		}
	}()
	brokers := strings.Split(cfg.KafkaBrokers, ",")
	registry := observability.NewRegistry()
	registry.MustRegister(pools.Collector())
	metrics := relay.NewMetrics(registry)
	tracing, err := observability.NewTracing(ctx, "outbox-relay")
	if err != nil {
		return nil, err
	}
	pub := publisher.NewPublisher(brokers, cfg.Topic, "orderflow-relay-"+cfg.RelayID, tracing)
	r, err := relay.New(func() []string { return pools.Topology().Names() }, lease.NewLocker(pools, cfg.RelayID), pub, cfg.relayConfig(), metrics,
		logger.With(slog.String("relay_id", cfg.RelayID)), time.Now)
	if err != nil {
		return nil, fmt.Errorf("ORDERFLOW_RELAY_*: %w", err)
	}
	store := outbox.NewStore(pools, time.Now)

	adminAuth, err := newAdminAuth(ctx, cfg, logger, registry)
	if err != nil {
		return nil, fmt.Errorf("ORDERFLOW_ADMIN_TOKEN: %w", err)
	}
	admin := ports.NewAdmin(store, metrics, logger)
	inProcess := server.NewInProcess()
	grpcServer, err := server.NewGRPCServer(server.GRPCOptions{InProcess: inProcess, Logger: logger, Registry: registry, Tracing: tracing,
		MaxRecvMsgBytes: 1 << 20, Limits: cfg.AdminGRPC,
		// Every call needs the token, streams too: reflection (which
		// describes the whole admin API) is a stream.
		Unary: []grpc.UnaryServerInterceptor{adminAuth.Unary}, Stream: []grpc.StreamServerInterceptor{adminAuth.Stream},
		Deadlines: server.Deadlines{Default: cfg.RequestTimeout, PerMethod: map[string]time.Duration{
			// A replay by filter may touch many rows, one shard's
			// transaction after another; a deadline could stop it between
			// shards, so it has none.
			outboxv1.OutboxAdminService_ReplayOutboxMessages_FullMethodName: 0,
		}}})
	if err != nil {
		return nil, err
	}
	outboxv1.RegisterOutboxAdminServiceServer(server.Registrar(grpcServer, inProcess), admin)
	gateway := server.NewGateway()
	if err := outboxv1.RegisterOutboxAdminServiceHandlerClient(ctx, gateway, outboxv1.NewOutboxAdminServiceClient(inProcess.Conn())); err != nil {
		return nil, fmt.Errorf("registering REST gateway: %w", err)
	}
	openAPI, err := gen.OpenAPI.ReadFile("orderflow/outbox/v1/admin_service.swagger.json")
	if err != nil {
		return nil, fmt.Errorf("reading OpenAPI document: %w", err)
	}
	ready := func(ctx context.Context) map[string]error {
		checks := pools.Ping(ctx)
		checks["kafka"] = kafkax.Ping(ctx, brokers)
		return checks
	}
	handler := server.NewHTTPHandler(server.HTTPOptions{API: gateway, OpenAPI: openAPI, MaxBodyBytes: 1 << 20, Tracing: tracing,
		Ready: ready, ReadyTimeout: 3 * time.Second, Logger: logger, Registry: registry, Profiling: cfg.Profiling})
	srv, err := server.Listen(logger, server.Addrs{GRPC: cfg.AdminGRPCAddr, HTTP: cfg.AdminHTTPAddr},
		grpcServer, handler, cfg.AdminHTTP, cfg.ShutdownTimeout)
	if err != nil {
		return nil, err
	}
	ok = true
	return &Service{cfg: cfg, logger: logger, pools: pools, publisher: pub, relay: r, metrics: metrics, store: store,
		server: srv, tracing: tracing}, nil
}

// newAdminAuth is the admin API's check: the admin token, and operators'
// JWTs unless authentication is off.
func newAdminAuth(ctx context.Context, cfg Config, logger *slog.Logger, registry prometheus.Registerer) (*ports.Auth, error) {
	ic, _, err := authgrpc.Build(ctx, cfg.Auth, logger, time.Now)
	if err != nil {
		return nil, fmt.Errorf("ORDERFLOW_AUTH_*: %w", err)
	}
	var jwt *authgrpc.Interceptor
	if ic != nil {
		// No rate limit: the admin API has no PlaceOrder, and operators
		// are few.
		ic.Limiter = nil
		ic.Public = ports.AdminPublic()
		ic.Realm = ports.AdminRealm
		ic.Registry = registry
		if jwt, err = authgrpc.NewInterceptor(*ic); err != nil {
			return nil, err
		}
	}
	adminAuth, err := ports.NewAuth(cfg.AdminToken, jwt)
	if err != nil {
		return nil, fmt.Errorf("ORDERFLOW_ADMIN_TOKEN: %w", err)
	}
	return adminAuth, nil
}

// AdminGRPCAddr is the bound admin gRPC address.
func (s *Service) AdminGRPCAddr() string { return s.server.GRPCAddr() }

// AdminHTTPAddr is the bound admin HTTP address.
func (s *Service) AdminHTTPAddr() string { return s.server.HTTPAddr() }

// Run relays and serves the admin API until ctx ends; the batches in flight
// are finished and the leases released before it returns.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	var relayErr, serveErr error
	wg.Go(func() { relayErr = s.relay.Run(ctx) })
	wg.Go(func() { s.metrics.WatchBacklog(ctx, s.store, s.cfg.BacklogInterval) })
	wg.Go(func() { serveErr = s.server.Run(ctx) })
	if s.cfg.TopologyReload > 0 && s.cfg.TopologyFile != "" {
		wg.Go(func() { shard.WatchTopology(ctx, s.cfg.TopologyFile, s.pools, s.cfg.TopologyReload, s.logger) })
	}
	wg.Wait()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return errors.Join(relayErr, serveErr, s.publisher.Close(), s.tracing.Shutdown(shutdownCtx), s.pools.Close())
}

// LogLevelName is the configured log level.
func (c *Config) LogLevelName() string { return c.LogLevel }

// TopologyPath is the configured topology file.
func (c *Config) TopologyPath() string { return c.TopologyFile }
