package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/orderflow/orderflow/shared/observability"
)

// GRPCOptions describes the gRPC port of a service and the one chain of
// cross-cutting work every call runs through, whether it came over gRPC or
// over REST (the gateway calls the services through an in-process channel
// with the same chain, see InProcess).
type GRPCOptions struct {
	// Logger receives one line per call that failed on the server's side
	// (INTERNAL, UNKNOWN, DATA_LOSS, DEADLINE_EXCEEDED, UNIMPLEMENTED).
	// Required.
	Logger *slog.Logger
	// Registry receives the gRPC server metrics and the panic counter.
	// Required.
	Registry *prometheus.Registry
	// Tracing starts one server span per call, continuing the caller's trace.
	// Required.
	Tracing *observability.Tracing
	// MaxRecvMsgBytes caps one request message; 0 keeps gRPC's default.
	MaxRecvMsgBytes int
	// Deadlines bounds each call's work.
	Deadlines Deadlines
	// Unary runs last, after the deadline is set and before the handler (auth,
	// for example).
	Unary []grpc.UnaryServerInterceptor
	// Stream runs last on streaming calls, reflection and health's Watch
	// among them, after the metrics and recovery: a check that Unary makes
	// (auth) must be made here too, or streams escape it.
	Stream []grpc.StreamServerInterceptor
	// Limits bounds the connections (concurrent streams, keepalive); zero
	// fields: the defaults.
	Limits GRPCConfig
	// InProcess, when set, is the REST gateway's channel to this server's
	// services: it gets the same chain (register the services on both with
	// Registrar).
	InProcess *InProcess
}

// Validate checks the options NewGRPCServer cannot do without.
func (o *GRPCOptions) Validate() error {
	var errs []error
	if o.Logger == nil || o.Registry == nil || o.Tracing == nil {
		errs = append(errs, errors.New("server: GRPCOptions needs a Logger, a Registry and Tracing"))
	}
	if o.MaxRecvMsgBytes < 0 {
		errs = append(errs, errors.New("server: MaxRecvMsgBytes must not be negative"))
	}
	if err := o.Limits.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("server: gRPC limits: %w", err))
	}
	errs = append(errs, o.Deadlines.Validate())
	return errors.Join(errs...)
}

// Deadlines is the time budget of each call: the deadline interceptor cuts a
// call's context at its budget (or earlier, at the caller's own deadline).
type Deadlines struct {
	// Default is the budget of every method not in PerMethod; 0 means none.
	Default time.Duration
	// PerMethod is the budget of single methods by full name
	// ("/orderflow.order.v1.OrderCommandService/PlaceOrder"); 0 means none.
	PerMethod map[string]time.Duration
}

// Validate refuses negative budgets.
func (d Deadlines) Validate() error {
	if d.Default < 0 {
		return errors.New("server: the default deadline must not be negative")
	}
	for m, b := range d.PerMethod {
		if b < 0 {
			return fmt.Errorf("server: the deadline of %s must not be negative", m)
		}
	}
	return nil
}

func (d Deadlines) budget(method string) time.Duration {
	if b, ok := d.PerMethod[method]; ok {
		return b
	}
	return d.Default
}

// NewGRPCServer returns a gRPC server whose calls, from gRPC clients and
// from the REST gateway alike, run through one chain: tracing (otelgrpc),
// then the call log, the Prometheus metrics, panic recovery, the per-method
// deadline and o.Unary (streams: the metrics, recovery and o.Stream). It
// also serves the standard health service and reflection, which run the
// same chain (so an auth interceptor in o.Unary and o.Stream covers
// reflection too). o.Limits caps concurrent streams per connection and
// enforces keepalive; o.MaxRecvMsgBytes caps a request message.
func NewGRPCServer(o GRPCOptions) (*grpc.Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	metrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
		grpcprom.WithHistogramBuckets(observability.LatencyBuckets()),
	))
	initialised := &initialisedMetrics{ServerMetrics: metrics}
	if err := o.Registry.Register(initialised); err != nil {
		return nil, fmt.Errorf("registering gRPC metrics: %w", err)
	}
	panics, err := panicCounter(o.Registry)
	if err != nil {
		return nil, err
	}
	recoverPanic := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		panics.WithLabelValues(Protocol(ctx)).Inc()
		return &panicError{value: p, stack: string(debug.Stack())}
	})
	unary := append([]grpc.UnaryServerInterceptor{
		logCalls(o.Logger),
		metrics.UnaryServerInterceptor(),
		recovery.UnaryServerInterceptor(recoverPanic),
		deadline(o.Deadlines),
	}, o.Unary...)
	stream := append([]grpc.StreamServerInterceptor{
		metrics.StreamServerInterceptor(), recovery.StreamServerInterceptor(recoverPanic),
	}, o.Stream...)
	newTracingHandler := func() stats.Handler {
		return otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(o.Tracing.Provider), otelgrpc.WithPropagators(o.Tracing.Propagator))
	}
	opts := []grpc.ServerOption{
		grpc.StatsHandler(newTracingHandler()),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}
	if o.InProcess != nil {
		o.InProcess.ch.WithServerUnaryInterceptor(chainUnary(unary)).
			WithServerStreamInterceptor(chainStream(stream)).
			WithServerStatsHandler(newTracingHandler())
	}
	opts = append(opts, o.Limits.serverOptions()...)
	if o.MaxRecvMsgBytes > 0 {
		opts = append(opts, grpc.MaxRecvMsgSize(o.MaxRecvMsgBytes))
	}
	s := grpc.NewServer(opts...)
	initialised.server = s
	healthpb.RegisterHealthServer(s, health.NewServer())
	reflection.Register(s)
	return s, nil
}

// deadline cuts each call's context at its method's budget. A handler that
// returns its context's error as it is (not a status) still answers
// DEADLINE_EXCEEDED or CANCELLED rather than UNKNOWN, in the metrics and the
// call log too.
func deadline(d Deadlines) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if b := d.budget(info.FullMethod); b > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, b)
			defer cancel()
		}
		resp, err := handler(ctx, req)
		if err != nil && ctx.Err() != nil {
			if _, ok := status.FromError(err); !ok && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
				return resp, status.FromContextError(err).Err()
			}
		}
		return resp, err
	}
}

// callLogLevel is the level a failed call is logged at; codes that are an
// answer to the caller's request (NOT_FOUND, INVALID_ARGUMENT, ...) and
// UNAVAILABLE (whose cause the port logs, once per outage rather than once
// per refused call) are not logged.
func callLogLevel(c codes.Code) (slog.Level, bool) {
	switch c {
	case codes.Internal, codes.Unknown, codes.DataLoss:
		return slog.LevelError, true
	case codes.DeadlineExceeded, codes.Unimplemented:
		return slog.LevelWarn, true
	default:
		return 0, false
	}
}

// logCalls writes the one log line of a call that failed on the server's
// side, with its method, code, protocol and duration, and the cause: the
// panic and its stack, or the error the port kept (see Internal).
func logCalls(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		if err == nil {
			return resp, nil
		}
		code := status.Code(err)
		level, ok := callLogLevel(code)
		if !ok || !logger.Enabled(ctx, level) {
			return resp, err
		}
		attrs := []slog.Attr{
			slog.String("method", info.FullMethod), slog.String("code", code.String()),
			slog.String("protocol", Protocol(ctx)), slog.Duration("duration", time.Since(start)),
		}
		var p *panicError
		if errors.As(err, &p) {
			attrs = append(attrs, slog.Any("panic", p.value), slog.String("stack", p.stack))
		} else {
			attrs = append(attrs, slog.Any("error", err))
		}
		logger.LogAttrs(ctx, level, "call failed", attrs...)
		return resp, err
	}
}

// Protocol is "http" for a call the REST gateway made through the in-process
// connection and "grpc" for one from a gRPC client.
func Protocol(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil && p.Addr.Network() == inProcessNetwork {
		return "http"
	}
	return "grpc"
}

// panicsMetric counts handler panics the chain recovered from, by the
// protocol the call came over ("grpc" or "http").
const panicsMetric = "orderflow_panics_recovered_total"

func panicCounter(registry *prometheus.Registry) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: panicsMetric,
		Help: "Handler panics recovered (answered with INTERNAL), by protocol.",
	}, []string{"protocol"})
	// Both protocols' series exist from the start, at 0, so that an
	// increase() over them means a panic, not the first one.
	c.WithLabelValues("grpc")
	c.WithLabelValues("http")
	if err := registry.Register(c); err != nil {
		return nil, fmt.Errorf("registering %s: %w", panicsMetric, err)
	}
	return c, nil
}

// panicError is a recovered panic: INTERNAL to the caller, the panic value
// and the stack for the call log.
type panicError struct {
	value any
	stack string
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }

// GRPCStatus answers the caller INTERNAL without the panic's details.
func (e *panicError) GRPCStatus() *status.Status { return status.New(codes.Internal, "internal error") }

// Internal is the INTERNAL status of an unexpected error: the caller sees
// "internal error", the call log the cause.
func Internal(cause error) error { return &internalError{cause: cause} }

type internalError struct{ cause error }

func (e *internalError) Error() string { return "internal error: " + e.cause.Error() }

func (e *internalError) Unwrap() error { return e.cause }

// GRPCStatus answers the caller INTERNAL without the cause.
func (e *internalError) GRPCStatus() *status.Status {
	return status.New(codes.Internal, "internal error")
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
