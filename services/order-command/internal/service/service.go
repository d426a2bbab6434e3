// Package service wires the order-command service together: configuration,
// shard pools, the use cases, the gRPC and REST ports, and the server.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/orderflow/orderflow/migrations"
	"github.com/orderflow/orderflow/services/order-command/internal/adapters/orderstore"
	"github.com/orderflow/orderflow/services/order-command/internal/app"
	"github.com/orderflow/orderflow/services/order-command/internal/ports"
	"github.com/orderflow/orderflow/shared/auth"
	"github.com/orderflow/orderflow/shared/auth/authgrpc"
	"github.com/orderflow/orderflow/shared/gen"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/observability"
	"github.com/orderflow/orderflow/shared/server"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/wait"
)

// tracerScope names the spans the service's own code starts.
const tracerScope = "github.com/orderflow/orderflow/services/order-command"

// Config is the service's configuration, read from ORDERFLOW_* variables.
type Config struct {
	// GRPCAddr is where gRPC listens.
	GRPCAddr string `env:"GRPC_ADDR" envDefault:"127.0.0.1:9090"`
	// HTTPAddr is where REST, /openapi.json, /metrics, /healthz and /readyz listen.
	HTTPAddr string `env:"HTTP_ADDR" envDefault:"127.0.0.1:8080"`
	// TopologyFile is the JSON list of shards and shard epochs.
	TopologyFile string `env:"TOPOLOGY_FILE" envDefault:".state/topology.json"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`
	// Shard sizes and bounds each shard's connection pool (ORDERFLOW_SHARD_*).
	Shard shard.PoolConfig `envPrefix:"SHARD_"`
	// PlaceGroup sets the group commit of PlaceOrder and of the changes
	// (ORDERFLOW_PLACE_GROUP_MAX, _IN_FLIGHT, _SEPARATE_CHANGES): concurrent
	// placements, accepts and cancels of one shard are written by one
	// transaction of up to MAX of them, at most IN_FLIGHT such transactions
	// per shard at a time; MAX 1 turns it off.
	PlaceGroup orderstore.GroupConfig `envPrefix:"PLACE_GROUP_"`
	// OrderNoBlockSize is how many order numbers an instance reserves from a
	// shard's sequence at a time.
	OrderNoBlockSize int `env:"ORDER_NO_BLOCK_SIZE" envDefault:"500"`
	// CancelWindow is how long after placing an order it can be changed
	// (advanced or cancelled): at most retention.Min, the shortest time the
	// purge keeps an order, so an order that can be changed is never purged.
	CancelWindow time.Duration `env:"CANCEL_WINDOW" envDefault:"720h"`
	// RetryWindow is how long after a shard is added a PlaceOrder retry also
	// looks for its order where the previous epoch placed it.
	RetryWindow time.Duration `env:"RETRY_WINDOW" envDefault:"24h"`
	// MaxBodyBytes caps REST request bodies and gRPC request messages.
	MaxBodyBytes int64 `env:"MAX_BODY_BYTES" envDefault:"65536"`
	// RequestTimeout bounds the work of one request, gRPC or REST (the
	// server chain's deadline).
	RequestTimeout time.Duration `env:"REQUEST_TIMEOUT" envDefault:"5s"`
	// StartupTimeout is how long start-up waits for every shard to answer.
	StartupTimeout time.Duration `env:"STARTUP_TIMEOUT" envDefault:"30s"`
	// ShutdownTimeout is how long in-flight requests may take to finish on
	// SIGTERM.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"20s"`
	// Profiling serves /debug/pprof/ on the HTTP port.
	Profiling bool `env:"PPROF" envDefault:"false"`
	// TopologyReload is how often the topology file is checked for a new
	// epoch (orderctl shards add); 0 turns reloading off.
	TopologyReload time.Duration `env:"TOPOLOGY_RELOAD" envDefault:"1s"`
	// HTTP bounds the HTTP port's connections (ORDERFLOW_HTTP_READ_TIMEOUT,
	// _READ_HEADER_TIMEOUT, _WRITE_TIMEOUT, _IDLE_TIMEOUT, _MAX_HEADER_BYTES).
	HTTP server.HTTPConfig `envPrefix:"HTTP_"`
	// GRPC bounds the gRPC port's connections
	// (ORDERFLOW_GRPC_MAX_CONCURRENT_STREAMS, _KEEPALIVE_*, _MAX_CONNECTION_IDLE).
	GRPC server.GRPCConfig `envPrefix:"GRPC_"`
	// Auth is the bearer-token check of every call and the per-caller
	// PlaceOrder limit (ORDERFLOW_AUTH_*): on by default, with
	// ORDERFLOW_AUTH_JWKS_FILE or ORDERFLOW_AUTH_JWKS_URL; without either the
	// service refuses to start unless ORDERFLOW_AUTH_DISABLED=true turns it
	// off (warned about at start).
	Auth auth.Settings `envPrefix:"AUTH_"`
}

// Validate checks the values that parsing alone does not and that no
// constructor New calls checks itself: the shard pools (shard.Open), the
// order-number block size (orderstore.NewAllocator), the group commit
// (orderstore.NewRepository) and the cancel window (app.New) are checked
// where they are used, once.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, errors.New("ORDERFLOW_MAX_BODY_BYTES must be at least 1024"))
	}
	if c.RequestTimeout <= 0 || c.StartupTimeout <= 0 || c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("ORDERFLOW_REQUEST_TIMEOUT, ORDERFLOW_STARTUP_TIMEOUT and ORDERFLOW_SHUTDOWN_TIMEOUT must be positive"))
	}
	if err := c.HTTP.ValidateFor(c.RequestTimeout); err != nil {
		errs = append(errs, fmt.Errorf("ORDERFLOW_HTTP_*: %w", err))
	}
	if err := c.Auth.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Service is a running order-command process.
type Service struct {
	cfg     Config
	logger  *slog.Logger
	pools   *shard.Pools
	tracing *observability.Tracing
	server  *server.Server
}

// New opens the shards, checks that every one answers and carries the
// current schema, and binds the ports. It does not serve until Run.
func New(ctx context.Context, cfg Config, topo shard.Topology, logger *slog.Logger, clock app.Clock) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	tracing, err := observability.NewTracing(ctx, "order-command")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = tracing.Shutdown(context.WithoutCancel(ctx))
		}
	}()
	// Statements get spans under the shard transaction's span.
	pools, err := shard.Open(topo, cfg.Shard, shard.WithTracerProvider(tracing.ExportingProvider()))
	if err != nil {
		return nil, err
	}
	defer func() {
		if !ok {
			_ = pools.Close()
		}
	}()
	if err := checkShards(ctx, pools, cfg.StartupTimeout); err != nil {
		return nil, err
	}

	numbers, err := orderstore.NewAllocator(pools, cfg.OrderNoBlockSize, logger)
	if err != nil {
		return nil, fmt.Errorf("ORDERFLOW_ORDER_NO_BLOCK_SIZE: %w", err)
	}
	repo, err := orderstore.NewRepository(pools, tracing.Tracer(tracerScope), cfg.PlaceGroup)
	if err != nil {
		return nil, fmt.Errorf("ORDERFLOW_PLACE_GROUP_*: %w", err)
	}
	registry := observability.NewRegistry()
	registry.MustRegister(pools.Collector())
	registry.MustRegister(repo.Collectors()...)
	interceptor, access, err := authgrpc.FromSettings(ctx, cfg.Auth, logger, registry, clock.Now)
	if err != nil {
		return nil, fmt.Errorf("ORDERFLOW_AUTH_*: %w", err)
	}
	unary, stream := interceptor.Chain()
	useCases, err := app.New(repo, numbers, pools.Topology, clock,
		app.Config{CancelWindow: cfg.CancelWindow, RetryWindow: cfg.RetryWindow}, observability.Traceparent, access)
	if err != nil {
		return nil, err
	}

	inProcess := server.NewInProcess()
	grpcServer, err := server.NewGRPCServer(server.GRPCOptions{InProcess: inProcess,
		Logger: logger, Registry: registry, Tracing: tracing, MaxRecvMsgBytes: int(cfg.MaxBodyBytes),
		Deadlines: server.Deadlines{Default: cfg.RequestTimeout}, Limits: cfg.GRPC, Unary: unary, Stream: stream,
	})
	if err != nil {
		return nil, err
	}
	orderv1.RegisterOrderCommandServiceServer(server.Registrar(grpcServer, inProcess), ports.NewGRPC(useCases, logger))

	gateway := server.NewGateway()
	if err := orderv1.RegisterOrderCommandServiceHandlerClient(ctx, gateway, orderv1.NewOrderCommandServiceClient(inProcess.Conn())); err != nil {
		return nil, fmt.Errorf("registering REST gateway: %w", err)
	}
	openAPI, err := gen.OpenAPI.ReadFile("orderflow/order/v1/command_service.swagger.json")
	if err != nil {
		return nil, fmt.Errorf("reading OpenAPI document: %w", err)
	}
	handler := server.NewHTTPHandler(server.HTTPOptions{
		API: gateway, OpenAPI: openAPI, MaxBodyBytes: cfg.MaxBodyBytes, Tracing: tracing,
		Ready: pools.Ping, ReadyTimeout: 2 * time.Second, Logger: logger, Registry: registry, Profiling: cfg.Profiling,
	})
	srv, err := server.Listen(logger, server.Addrs{GRPC: cfg.GRPCAddr, HTTP: cfg.HTTPAddr},
		grpcServer, handler, cfg.HTTP, cfg.ShutdownTimeout)
	if err != nil {
		return nil, err
	}
	ok = true
	return &Service{cfg: cfg, logger: logger, pools: pools, tracing: tracing, server: srv}, nil
}

// GRPCAddr is the bound gRPC address.
func (s *Service) GRPCAddr() string { return s.server.GRPCAddr() }

// HTTPAddr is the bound HTTP address.
func (s *Service) HTTPAddr() string { return s.server.HTTPAddr() }

// Run serves until ctx ends, drains in-flight requests, and closes the pools.
func (s *Service) Run(ctx context.Context) error {
	var watch sync.WaitGroup
	if s.cfg.TopologyReload > 0 && s.cfg.TopologyFile != "" {
		watch.Go(func() { shard.WatchTopology(ctx, s.cfg.TopologyFile, s.pools, s.cfg.TopologyReload, s.logger) })
	}
	err := s.server.Run(ctx)
	watch.Wait()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return errors.Join(err, s.tracing.Shutdown(shutdownCtx), s.pools.Close())
}

// checkShards waits until every shard answers and has the schema this
// binary was built with, and names the shard that does not.
func checkShards(ctx context.Context, pools *shard.Pools, timeout time.Duration) error {
	latest, err := migrations.Latest()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, name := range pools.Topology().Names() {
		db, err := pools.DB(name)
		if err != nil {
			return err
		}
		var version int64
		for {
			err = db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version_id), 0) FROM "+migrations.VersionTable).Scan(&version)
			if err == nil || ctx.Err() != nil {
				break
			}
			wait.Sleep(ctx, 250*time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("shard %s is unreachable or has no schema (waited %s): %w; run `orderctl migrate`", name, timeout, err)
		}
		if version != latest {
			return fmt.Errorf("shard %s has schema version %d, this build needs %d; run `orderctl migrate`", name, version, latest)
		}
	}
	return nil
}

// LogLevelName is the configured log level.
func (c *Config) LogLevelName() string { return c.LogLevel }

// TopologyPath is the configured topology file.
func (c *Config) TopologyPath() string { return c.TopologyFile }
