package server

import (
	"context"
	"log/slog"
	"runtime/debug"
	"sync"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/orderflow/orderflow/shared/observability"
)

// GRPCOptions describes the gRPC port of a service.
type GRPCOptions struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry
	Tracing  *observability.Tracing
	// MaxRecvMsgBytes caps one request message.
	MaxRecvMsgBytes int
	// Unary runs after metrics and recovery, before the handler (auth, for
	// example).
	Unary []grpc.UnaryServerInterceptor
}

// NewGRPCServer returns a gRPC server with panic recovery (logged with the
// stack, counted in orderflow_panics_recovered_total), Prometheus metrics,
// tracing, the standard health service and reflection.
func NewGRPCServer(o GRPCOptions) *grpc.Server {
	metrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
		grpcprom.WithHistogramBuckets(observability.LatencyBuckets()),
	))
	initialised := &initialisedMetrics{ServerMetrics: metrics}
	o.Registry.MustRegister(initialised)
	panics := panicCounter(o.Registry)
	recoverPanic := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		panics.WithLabelValues("grpc").Inc()
		method, _ := grpc.Method(ctx)
		o.Logger.ErrorContext(ctx, "panic in gRPC handler", slog.Any("panic", p),
			slog.String("method", method), slog.String("stack", string(debug.Stack())))
		return status.Error(codes.Internal, "internal error")
	})
	opts := []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(o.Tracing.Provider), otelgrpc.WithPropagators(o.Tracing.Propagator))),
		grpc.ChainUnaryInterceptor(append([]grpc.UnaryServerInterceptor{
			metrics.UnaryServerInterceptor(), recovery.UnaryServerInterceptor(recoverPanic)}, o.Unary...)...),
		grpc.ChainStreamInterceptor(metrics.StreamServerInterceptor(), recovery.StreamServerInterceptor(recoverPanic)),
	}
	if o.MaxRecvMsgBytes > 0 {
		opts = append(opts, grpc.MaxRecvMsgSize(o.MaxRecvMsgBytes))
	}
	s := grpc.NewServer(opts...)
	initialised.server = s
	healthpb.RegisterHealthServer(s, health.NewServer())
	reflection.Register(s)
	return s
}

// initialisedMetrics are the gRPC server metrics with a series for every
// method and code from the first scrape on (grpcprom's InitializeMetrics):
// a method never called is at 0 rather than absent, so alerts and
// dashboards over rate() see 0. The services are registered on the server
// after NewGRPCServer returns and before the HTTP port serves its first
// scrape, so the first scrape initialises them, once.
type initialisedMetrics struct {
	*grpcprom.ServerMetrics
	server *grpc.Server
	once   sync.Once
}

// Collect initialises every method's series on the first scrape, then
// collects them.
func (m *initialisedMetrics) Collect(ch chan<- prometheus.Metric) {
	m.once.Do(func() {
		if m.server != nil {
			m.InitializeMetrics(m.server)
		}
	})
	m.ServerMetrics.Collect(ch)
}
