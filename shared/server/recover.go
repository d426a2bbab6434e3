package server

import (
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// panicsMetric counts handler panics the server recovered from, by protocol
// ("grpc" or "http"). The gRPC server and the HTTP handler of a process share
// it: the REST gateway is registered in-process and calls the handlers
// directly, past the gRPC interceptors, so it needs its own recovery.
const panicsMetric = "orderflow_panics_recovered_total"

// panicCounter registers the panic counter on registry, or returns the one
// the other port of the same process registered already.
func panicCounter(registry *prometheus.Registry) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: panicsMetric,
		Help: "Handler panics recovered (answered with INTERNAL), by protocol.",
	}, []string{"protocol"})
	// Both protocols' series exist from the start, at 0, so that an
	// increase() over them means a panic, not the first one.
	c.WithLabelValues("grpc")
	c.WithLabelValues("http")
	if err := registry.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			if existing, ok := already.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// internalStatusJSON is the body of a recovered REST panic: the same
// google.rpc.Status JSON as every other REST error, code INTERNAL.
var internalStatusJSON = func() []byte {
	body, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(status.New(codes.Internal, "internal error").Proto())
	if err != nil {
		panic(err)
	}
	return body
}()

// recoverPanics answers a handler panic with HTTP 500 and an INTERNAL
// google.rpc.Status, logs it with its stack at error level and counts it,
// as the gRPC recovery interceptor does for gRPC calls. A panic after the
// handler started its response can only be logged: the client sees the
// response cut short. http.ErrAbortHandler, net/http's way to abort a
// response on purpose, is passed on.
func recoverPanics(next http.Handler, logger *slog.Logger, panics *prometheus.CounterVec) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tw := &writeTracker{ResponseWriter: w}
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			panics.WithLabelValues("http").Inc()
			logger.ErrorContext(r.Context(), "panic in REST handler", slog.Any("panic", p),
				slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("stack", string(debug.Stack())))
			if tw.written {
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write(internalStatusJSON)
		}()
		next.ServeHTTP(tw, r)
	})
}

// writeTracker remembers whether the response was started.
type writeTracker struct {
	http.ResponseWriter
	written bool
}

func (t *writeTracker) WriteHeader(code int) {
	t.written = true
	t.ResponseWriter.WriteHeader(code)
}

func (t *writeTracker) Write(b []byte) (int, error) {
	t.written = true
	return t.ResponseWriter.Write(b)
}

// Flush passes flushes on (the gateway flushes streamed responses).
func (t *writeTracker) Flush() {
	if f, ok := t.ResponseWriter.(http.Flusher); ok {
		t.written = true
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (t *writeTracker) Unwrap() http.ResponseWriter { return t.ResponseWriter }
