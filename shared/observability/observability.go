// Package observability sets up what every orderflow process reports: a
// Prometheus registry and an OpenTelemetry tracer provider with W3C trace
// context propagation. Nothing here is global: callers pass what they get.
package observability

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Tracing bundles the tracer provider and the propagator a process uses.
type Tracing struct {
	Provider   *sdktrace.TracerProvider
	Propagator propagation.TextMapPropagator
}

// NewTracing returns a tracer provider that gives every request a trace id
// (continuing the caller's traceparent when there is one), so that logs,
// outbox rows and Kafka headers can be correlated. Spans are sampled only
// when the caller sampled them; exporters can be added with opts.
func NewTracing(service string, opts ...sdktrace.TracerProviderOption) *Tracing {
	res := sdkresource.NewSchemaless(attribute.String("service.name", service))
	base := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())),
	}
	return &Tracing{
		Provider:   sdktrace.NewTracerProvider(append(base, opts...)...),
		Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
}

// Shutdown flushes and stops the tracer provider.
func (t *Tracing) Shutdown(ctx context.Context) error { return t.Provider.Shutdown(ctx) }

// Traceparent returns the W3C traceparent header value of the span in ctx,
// or "" when there is none.
func Traceparent(ctx context.Context) string {
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	return carrier.Get("traceparent")
}
