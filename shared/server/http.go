package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

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
	// Ready is run by /readyz.
	Ready ReadinessCheck
	// ReadyTimeout bounds one /readyz run.
	ReadyTimeout time.Duration
	// Registry holds the process's metrics, served at /metrics.
	Registry *prometheus.Registry
	// Tracing traces every REST request.
	Tracing *observability.Tracing
	// Logger logs recovered handler panics; nil means slog.Default().
	Logger *slog.Logger
	// Profiling serves net/http/pprof under /debug/pprof/ (for profiling
	// under load; off by default).
	Profiling bool
}

// NewHTTPHandler puts the REST API, the OpenAPI document and the operations
// endpoints on one handler, with tracing, request metrics, a body limit and
// panic recovery on the API.
func NewHTTPHandler(o HTTPOptions) http.Handler {
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{Registry: o.Registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", readyHandler(o.Ready, o.ReadyTimeout))
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

	api := recoverPanics(o.API, logger, panicCounter(o.Registry))
	api = limitBody(api, o.MaxBodyBytes)
	api = otelhttp.NewHandler(api, "rest",
		otelhttp.WithTracerProvider(o.Tracing.Provider), otelhttp.WithPropagators(o.Tracing.Propagator),
		otelhttp.WithSpanNameFormatter(restSpanName))
	mux.Handle("/", withRouteName(api))
	return mux
}

// RouteMetrics is a grpc-gateway middleware that records each REST request
// under its route pattern (not the raw path, which would explode the label
// set with order numbers), and names the request's server span by the same
// route.
func RouteMetrics(registry *prometheus.Registry) runtime.Middleware {
	hist := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "orderflow_rest_request_duration_seconds",
		Help:    "REST requests by route pattern, method and HTTP status code.",
		Buckets: observability.LatencyBuckets(),
	}, []string{"route", "method", "code"})
	registry.MustRegister(hist)
	return func(next runtime.HandlerFunc) runtime.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
			if p, ok := runtime.HTTPPattern(r.Context()); ok {
				recordRoute(r, p.String())
			}
			start := time.Now()
			rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
			next(rec, r, params)
			route := "unmatched"
			if p, ok := runtime.HTTPPattern(r.Context()); ok {
				route = p.String()
			}
			hist.WithLabelValues(route, r.Method, strconv.Itoa(rec.code)).Observe(time.Since(start).Seconds())
		}
	}
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
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

func readyHandler(check ReadinessCheck, timeout time.Duration) http.HandlerFunc {
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
					checks[name] = err.Error()
					ready = false
				} else {
					checks[name] = "ok"
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
