// Package service wires the order-query service together: configuration,
// the MongoDB connection and indexes, the use cases, the gRPC and REST
// ports, and the server.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orderflow/orderflow/services/order-query/internal/adapters/readstore"
	"github.com/orderflow/orderflow/services/order-query/internal/adapters/shards"
	"github.com/orderflow/orderflow/services/order-query/internal/app"
	"github.com/orderflow/orderflow/services/order-query/internal/ports"
	"github.com/orderflow/orderflow/shared/auth"
	"github.com/orderflow/orderflow/shared/auth/authgrpc"
	"github.com/orderflow/orderflow/shared/gen"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/mongox"
	"github.com/orderflow/orderflow/shared/observability"
	"github.com/orderflow/orderflow/shared/server"
	"github.com/orderflow/orderflow/shared/shard"
)

// Config is the service's configuration, read from ORDERFLOW_* variables.
type Config struct {
	// GRPCAddr is where gRPC listens.
	GRPCAddr string `env:"GRPC_ADDR" envDefault:"127.0.0.1:9091"`
	// HTTPAddr is where REST, /openapi.json, /metrics, /healthz and /readyz listen.
	HTTPAddr string `env:"HTTP_ADDR" envDefault:"127.0.0.1:8081"`
	// MongoURI is the MongoDB connection string.
	MongoURI string `env:"MONGO_URI" envDefault:"mongodb://127.0.0.1:27017"`
	// MongoDatabase is the database that holds the orders collection.
	MongoDatabase string `env:"MONGO_DATABASE" envDefault:"orderflow"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`
	// MinVersionWait is the longest a read with minVersion waits for the
	// projector before answering with an older document and stale=true.
	MinVersionWait time.Duration `env:"MIN_VERSION_WAIT" envDefault:"2s"`
	// MaxWaitingReads is the most reads with minVersion that wait at once;
	// a read that would wait beyond it is refused with RESOURCE_EXHAUSTED
	// (HTTP 429) and a retry hint.
	MaxWaitingReads int `env:"MAX_WAITING_READS" envDefault:"2000"`
	// WaitPollBatch is the most order numbers one query of the shared poll
	// of the waiting reads asks for.
	WaitPollBatch int `env:"WAIT_POLL_BATCH" envDefault:"500"`
	// RequestTimeout bounds the work of one request, gRPC or REST, a
	// minVersion wait included (the server chain's deadline).
	RequestTimeout time.Duration `env:"REQUEST_TIMEOUT" envDefault:"5s"`
	// StartupTimeout bounds connecting to MongoDB and creating the indexes.
	StartupTimeout time.Duration `env:"STARTUP_TIMEOUT" envDefault:"30s"`
	// ShutdownTimeout is how long in-flight requests may take to finish on
	// SIGTERM.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"20s"`
	// MaxBodyBytes caps REST request bodies and gRPC request messages.
	MaxBodyBytes int64 `env:"MAX_BODY_BYTES" envDefault:"65536"`
	// Profiling serves /debug/pprof/ on the HTTP port.
	Profiling bool `env:"PPROF" envDefault:"false"`
	// HTTP bounds the HTTP port's connections (ORDERFLOW_HTTP_READ_TIMEOUT,
	// _READ_HEADER_TIMEOUT, _WRITE_TIMEOUT, _IDLE_TIMEOUT, _MAX_HEADER_BYTES);
	// the write timeout must exceed RequestTimeout, which bounds a
	// minVersion wait.
	HTTP server.HTTPConfig `envPrefix:"HTTP_"`
	// GRPC bounds the gRPC port's connections
	// (ORDERFLOW_GRPC_MAX_CONCURRENT_STREAMS, _KEEPALIVE_*, _MAX_CONNECTION_IDLE).
	GRPC server.GRPCConfig `envPrefix:"GRPC_"`
	// TopologyFile, when set, is the command side's shard topology: a read
	// with minVersion of an order that has no document asks the order's
	// shard whether it was placed, and answers NOT_FOUND at once when it
	// was not. Empty: no shard is asked, and such a read waits for the
	// document like any other.
	TopologyFile string `env:"TOPOLOGY_FILE"`
	// TopologyReload is how often the topology file is checked for an added
	// shard (0: never).
	TopologyReload time.Duration `env:"TOPOLOGY_RELOAD" envDefault:"1s"`
	// Shard sizes each shard's connection pool (ORDERFLOW_SHARD_*), used
	// only with TopologyFile.
	Shard shard.PoolConfig `envPrefix:"SHARD_"`
	// Auth is the bearer-token check of every call (ORDERFLOW_AUTH_*): on
	// by default, with ORDERFLOW_AUTH_JWKS_FILE or ORDERFLOW_AUTH_JWKS_URL;
	// without either the service refuses to start unless
	// ORDERFLOW_AUTH_DISABLED=true turns it off (warned about at start).
	Auth auth.Settings `envPrefix:"AUTH_"`
}

// Validate checks the values that parsing alone does not.
func (c *Config) Validate() error {
	var errs []error
	if c.MongoURI == "" {
		errs = append(errs, errors.New("ORDERFLOW_MONGO_URI must not be empty"))
	}
	if c.MongoDatabase == "" {
		errs = append(errs, errors.New("ORDERFLOW_MONGO_DATABASE must not be empty"))
	}
	if c.MinVersionWait < 0 {
		errs = append(errs, errors.New("ORDERFLOW_MIN_VERSION_WAIT must not be negative"))
	}
	if c.MaxWaitingReads < 1 {
		errs = append(errs, errors.New("ORDERFLOW_MAX_WAITING_READS must be at least 1"))
	}
	if c.WaitPollBatch < 1 {
		errs = append(errs, errors.New("ORDERFLOW_WAIT_POLL_BATCH must be at least 1"))
	}
	if c.TopologyReload < 0 {
		errs = append(errs, errors.New("ORDERFLOW_TOPOLOGY_RELOAD must not be negative"))
	}
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

// Service is a running order-query process.
type Service struct {
	cfg      Config
	logger   *slog.Logger
	useCases *app.Service
	client   *mongo.Client
	// pools are the shards asked whether an order exists; nil without
	// ORDERFLOW_TOPOLOGY_FILE.
	pools   *shard.Pools
	tracing *observability.Tracing
	server  *server.Server
}

// New connects to MongoDB, creates the indexes the lists need, and binds
// the ports. It does not serve until Run.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	// A topology file that does not load is a configuration error, told
	// before anything is dialled.
	var topo shard.Topology
	if cfg.TopologyFile != "" {
		var err error
		if topo, err = shard.LoadTopology(cfg.TopologyFile); err != nil {
			return nil, fmt.Errorf("ORDERFLOW_TOPOLOGY_FILE: %w", err)
		}
	}
	startCtx, cancel := context.WithTimeout(ctx, cfg.StartupTimeout)
	defer cancel()
	client, err := mongox.Connect(startCtx, cfg.MongoURI)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = client.Disconnect(context.WithoutCancel(ctx))
		}
	}()
	tracing, err := observability.NewTracing(ctx, "order-query")
	if err != nil {
		return nil, err
	}
	store := readstore.NewStore(client.Database(cfg.MongoDatabase), tracing.Tracer("github.com/orderflow/orderflow/services/order-query"))
	if err := store.EnsureIndexes(startCtx); err != nil {
		return nil, err
	}

	registry := observability.NewRegistry()
	var pools *shard.Pools
	var orders app.Orders
	if cfg.TopologyFile != "" {
		// Opening connects to nothing: the query side starts, and serves
		// from MongoDB, while a shard is down.
		if pools, err = shard.Open(topo, cfg.Shard, shard.WithTracerProvider(tracing.ExportingProvider())); err != nil {
			return nil, err
		}
		defer func() {
			if !ok {
				_ = pools.Close()
			}
		}()
		registry.MustRegister(pools.Collector())
		reload := func(ctx context.Context) (bool, error) {
			return shard.ReloadTopology(ctx, cfg.TopologyFile, pools, logger)
		}
		if orders, err = shards.NewOrders(pools, reload); err != nil {
			return nil, err
		}
	}

	// The same checks as order-command's, in the same chain: REST reaches
	// the service through the in-process channel and runs them too.
	interceptor, access, err := authgrpc.FromSettings(ctx, cfg.Auth, logger, registry, time.Now)
	if err != nil {
		return nil, fmt.Errorf("ORDERFLOW_AUTH_*: %w", err)
	}
	unary, stream := interceptor.Chain()
	useCases, err := app.New(store, orders, access, app.Config{MinVersionWait: cfg.MinVersionWait,
		MaxWaiting: cfg.MaxWaitingReads, PollBatch: cfg.WaitPollBatch})
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
	orderv1.RegisterOrderQueryServiceServer(server.Registrar(grpcServer, inProcess), ports.NewGRPC(useCases, logger))

	gateway := server.NewGateway()
	if err := orderv1.RegisterOrderQueryServiceHandlerClient(ctx, gateway, orderv1.NewOrderQueryServiceClient(inProcess.Conn())); err != nil {
		return nil, fmt.Errorf("registering REST gateway: %w", err)
	}
	openAPI, err := gen.OpenAPI.ReadFile("orderflow/order/v1/query_service.swagger.json")
	if err != nil {
		return nil, fmt.Errorf("reading OpenAPI document: %w", err)
	}
	handler := server.NewHTTPHandler(server.HTTPOptions{
		API: gateway, OpenAPI: openAPI, MaxBodyBytes: cfg.MaxBodyBytes, Tracing: tracing,
		Ready: func(ctx context.Context) map[string]error {
			return map[string]error{"mongodb": mongox.Ping(ctx, client)}
		},
		ReadyTimeout: 2 * time.Second, Logger: logger, Registry: registry, Profiling: cfg.Profiling,
	})
	srv, err := server.Listen(logger, server.Addrs{GRPC: cfg.GRPCAddr, HTTP: cfg.HTTPAddr},
		grpcServer, handler, cfg.HTTP, cfg.ShutdownTimeout)
	if err != nil {
		return nil, err
	}
	ok = true
	return &Service{cfg: cfg, logger: logger, useCases: useCases, client: client, pools: pools, tracing: tracing, server: srv}, nil
}

// GRPCAddr is the bound gRPC address.
func (s *Service) GRPCAddr() string { return s.server.GRPCAddr() }

// HTTPAddr is the bound HTTP address.
func (s *Service) HTTPAddr() string { return s.server.HTTPAddr() }

// Run serves until ctx ends, drains in-flight requests, and disconnects
// from MongoDB and the shards.
func (s *Service) Run(ctx context.Context) error {
	var watch sync.WaitGroup
	if s.pools != nil && s.cfg.TopologyReload > 0 {
		watch.Go(func() { shard.WatchTopology(ctx, s.cfg.TopologyFile, s.pools, s.cfg.TopologyReload, s.logger) })
	}
	err := s.server.Run(ctx)
	watch.Wait()
	s.useCases.Close()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	errs := []error{err, s.tracing.Shutdown(shutdownCtx), s.client.Disconnect(shutdownCtx)}
	if s.pools != nil {
		errs = append(errs, s.pools.Close())
	}
	return errors.Join(errs...)
}
