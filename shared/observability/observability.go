// Package observability sets up what every orderflow process reports: a
// Prometheus registry and an OpenTelemetry tracer provider with W3C trace
// context propagation, exporting spans over OTLP when the standard
// OpenTelemetry environment variables ask for it. Nothing here is global:
// callers pass what they get.
package observability

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
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
	exporting  bool
	// recording: spans end up somewhere, an exporter's or the processors
	// a caller (a test) added.
	recording bool
}

// The standard OpenTelemetry variables NewTracing looks at itself; the SDK
// and the OTLP exporters read the others (protocol, headers, timeouts,
// OTEL_BSP_*, OTEL_TRACES_SAMPLER_ARG, OTEL_RESOURCE_ATTRIBUTES, ...).
const (
	envEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envTracesExporter = "OTEL_TRACES_EXPORTER"
	envSampler        = "OTEL_TRACES_SAMPLER"
	envSamplerArg     = "OTEL_TRACES_SAMPLER_ARG"
)

// DefaultSampleRatio is the share of new traces sampled when spans are
// exported and OTEL_TRACES_SAMPLER is not set: one order in a hundred at
// the command side, followed by the relay and the projector because they
// continue its trace (parent-based).
const DefaultSampleRatio = 0.01

// NewTracing returns the process's tracer provider. Every request gets a
// trace id (continuing the caller's traceparent when there is one), so that
// logs, outbox rows and Kafka headers can be correlated whether or not spans
// leave the process.
//
// Spans are exported, through a batch span processor, only when an OTLP
// endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or OTEL_TRACES_EXPORTER names an
// exporter (otlp, console; none turns export off); the exporter is the one
// autoexport builds from the environment (OTEL_EXPORTER_OTLP_PROTOCOL grpc
// or http/protobuf, the default). The sampler is OTEL_TRACES_SAMPLER (and
// OTEL_TRACES_SAMPLER_ARG) when set; else, when exporting,
// parentbased_traceidratio at OTEL_TRACES_SAMPLER_ARG or DefaultSampleRatio,
// and when not exporting,
// parentbased_always_off: new traces are not recorded, which costs an id
// and a context per span, and a sampled caller's decision is still kept
// and passed on. service is the service.name unless OTEL_SERVICE_NAME says
// otherwise; OTEL_RESOURCE_ATTRIBUTES adds attributes. opts come last and
// win (tests add their own processors).
func NewTracing(ctx context.Context, service string, opts ...sdktrace.TracerProviderOption) (*Tracing, error) {
	res, err := sdkresource.New(ctx,
		sdkresource.WithAttributes(attribute.String("service.name", service)),
		sdkresource.WithTelemetrySDK(),
		sdkresource.WithFromEnv(), // after the default name, so OTEL_SERVICE_NAME wins
	)
	if err != nil {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	base := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	exporting := false
	if exportConfigured() {
		exp, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			return nil, fmt.Errorf("span exporter: %w", err)
		}
		if !autoexport.IsNoneSpanExporter(exp) {
			exporting = true
			base = append(base, sdktrace.WithBatcher(exp))
		}
	}
	// Without WithSampler the SDK reads OTEL_TRACES_SAMPLER itself.
	if os.Getenv(envSampler) == "" {
		base = append(base, sdktrace.WithSampler(defaultSampler(exporting)))
	}
	return &Tracing{
		Provider:   sdktrace.NewTracerProvider(append(base, opts...)...),
		Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		exporting:  exporting,
		recording:  exporting || len(opts) > 0,
	}, nil
}

// exportConfigured tells whether the environment asks for an exporter. An
// OTLP exporter with no endpoint would send to localhost:4318; without one
// configured nothing is sent at all.
func exportConfigured() bool {
	return os.Getenv(envEndpoint) != "" || os.Getenv(envTracesEndpoint) != "" || os.Getenv(envTracesExporter) != ""
}

func defaultSampler(exporting bool) sdktrace.Sampler {
	if exporting {
		ratio := DefaultSampleRatio
		if r, err := strconv.ParseFloat(os.Getenv(envSamplerArg), 64); err == nil && r >= 0 && r <= 1 {
			ratio = r
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))
	}
	return sdktrace.ParentBased(sdktrace.NeverSample())
}

// Exporting tells whether spans leave the process.
func (t *Tracing) Exporting() bool { return t.exporting }

// Recording tells whether spans end up anywhere: exported, or handed to
// the span processors NewTracing was given. Instrumentation that would only
// make non-recording spans can then be left out.
func (t *Tracing) Recording() bool { return t.recording }

// ExportingProvider is the tracer provider when spans leave the process,
// else nil: instrumentation that costs something per call (a span per SQL
// statement) is then left out entirely rather than made to record nothing.
func (t *Tracing) ExportingProvider() trace.TracerProvider {
	if !t.exporting {
		return nil
	}
	return t.Provider
}

// Tracer returns the tracer of an instrumentation scope (a package path).
func (t *Tracing) Tracer(scope string) trace.Tracer { return t.Provider.Tracer(scope) }

// Shutdown flushes the spans not yet exported and stops the tracer provider.
func (t *Tracing) Shutdown(ctx context.Context) error { return t.Provider.Shutdown(ctx) }

// Traceparent returns the W3C traceparent header value of the span in ctx,
// or "" when there is none.
func Traceparent(ctx context.Context) string {
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	return carrier.Get("traceparent")
}

// WithTraceparent returns ctx with the remote span context of a W3C
// traceparent value as its parent (an outbox row's stored trace), or ctx
// unchanged when the value is empty or malformed.
func WithTraceparent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}
