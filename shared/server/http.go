package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"

	"github.com/orderflow/orderflow/shared/observability"
)

// ReadinessCheck reports, per dependency name, nil when it is usable.
type ReadinessCheck func(ctx context.Context) map[string]error

// HTTPOptions describes the HTTP port of a service.
type HTTPOptions struct {
	// API serves the REST routes (usually the grpc-gateway mux).
	API http.Handler
	// OpenAPI is the service's OpenAPI document, served at /openapi.json.
	OpenAPI []byte
	// MaxBodyBytes caps request bodies; larger ones are refused with 400.
	MaxBodyBytes int64
	// Ready is run by /readyz, which answers each component's name and
	// state ("ok" or "unreachable") and never the error's text: a driver's
	// error names hosts, ports, DSNs or socket paths, which are not for
	// whoever can reach the port. The cause goes to Logger.
	Ready ReadinessCheck
	// Logger receives the cause of a failed readiness check; nil: none.
	Logger *slog.Logger
	// ReadyTimeout bounds one /readyz run.
	ReadyTimeout time.Duration
	// Registry holds the process's metrics, served at /metrics.
	Registry *prometheus.Registry
	// Tracing gives each REST request a server span named by its route,
	// when spans are recorded (Tracing.Recording); nil means none.
	Tracing *observability.Tracing
	// Profiling serves net/http/pprof under /debug/pprof/ (for profiling
	// under load; off by default).
	Profiling bool
}

// NewHTTPHandler puts the REST API, the OpenAPI document and the operations
// endpoints on one handler. Only what is HTTP's own is done here, the body
// limit and the REST request's span: recovery, deadlines, metrics, the call log, tracing and auth are
// the gRPC server's chain, which the gateway calls in-process (see
// InProcess).
func NewHTTPHandler(o HTTPOptions) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{Registry: o.Registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", readyHandler(o.Ready, o.ReadyTimeout, o.Logger))
	if o.OpenAPI != nil {
		mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(o.OpenAPI)
		})
	}

	if o.Profiling {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}

	// The REST request's own server span, named by its route, is the parent
	// of the gRPC server span the in-process call makes: it also covers what
	// fails before the chain (decoding, the body limit, unmatched routes).
	api := limitBody(o.API, o.MaxBodyBytes)
	// Without anywhere for spans to go, the REST span is left out (it
	// would cost a wrapped request and response on every call); the gRPC
	// server span still continues a caller's trace context, which the
	// gateway forwards as it came.
	if o.Tracing != nil && o.Tracing.Recording() {
		api = otelhttp.NewHandler(propagateSpan(api, o.Tracing.Propagator), "rest",
			otelhttp.WithTracerProvider(o.Tracing.Provider), otelhttp.WithPropagators(o.Tracing.Propagator),
			otelhttp.WithSpanNameFormatter(restSpanName))
		// The holder of the matched route, for the span's name; without a
		// span nothing reads it (recordRoute finds no holder then).
		api = withRouteName(api)
	}
	mux.Handle("/", api)
	return mux
}

// propagateSpan writes the REST span's context into the request's trace
// headers, which the gateway forwards as gRPC metadata (incomingHeader):
// the gRPC server span is then the REST span's child, not its sibling
// under the caller's span.
func propagateSpan(next http.Handler, propagator propagation.TextMapPropagator) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		propagator.Inject(r.Context(), propagation.HeaderCarrier(r.Header))
		next.ServeHTTP(w, r)
	})
}

func limitBody(next http.Handler, limit int64) http.Handler {
	if limit <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// Component states of /readyz.
const (
	stateOK          = "ok"
	stateUnreachable = "unreachable"
)

func readyHandler(check ReadinessCheck, timeout time.Duration, logger *slog.Logger) http.HandlerFunc {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		checks := map[string]string{}
		ready := true
		if check != nil {
			for name, err := range check(ctx) {
				if err != nil {
					checks[name] = stateUnreachable
					ready = false
					if logger != nil {
						logger.WarnContext(ctx, "readiness check failed", slog.String("component", name), slog.Any("error", err))
					}
				} else {
					checks[name] = stateOK
				}
			}
		}
		code, state := http.StatusOK, "ready"
		if !ready {
			code, state = http.StatusServiceUnavailable, "not ready"
		}
		writeJSON(w, code, map[string]any{"status": state, "checks": checks})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
