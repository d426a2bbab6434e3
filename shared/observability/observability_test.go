package observability_test

import (
	"context"
	"testing"

	"github.com/orderflow/orderflow/shared/observability"
	"github.com/orderflow/orderflow/shared/observability/otlptest"
)

// The environment decides whether spans leave the process, how, and which
// traces are recorded; Shutdown flushes what the batch processor holds. The
// cases set process environment variables, so they do not run in parallel.
func TestTracingFollowsTheEnvironment(t *testing.T) {
	receiver := otlptest.Start(t)
	tests := []struct {
		name          string
		env           map[string]string
		wantExporting bool
		wantRecording bool   // a new trace's root span is recorded
		wantReceived  string // "" when nothing may arrive; else the protocol
		wantService   string
	}{
		{name: "no endpoint: nothing exported, new traces not recorded"},
		{name: "no endpoint, sampler always_on: recorded, still nothing exported",
			env: map[string]string{"OTEL_TRACES_SAMPLER": "always_on"}, wantRecording: true},
		{name: "endpoint over http/protobuf", wantExporting: true, wantRecording: true, wantReceived: "http", wantService: "svc",
			env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.HTTPEndpoint(), "OTEL_TRACES_SAMPLER": "parentbased_always_on"}},
		{name: "traces endpoint over grpc, service renamed", wantExporting: true, wantRecording: true, wantReceived: "grpc", wantService: "renamed",
			env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.GRPCEndpoint(), "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
				"OTEL_EXPORTER_OTLP_INSECURE": "true", "OTEL_TRACES_SAMPLER": "always_on", "OTEL_SERVICE_NAME": "renamed"}},
		{name: "endpoint with the default sampler: new traces sampled at the default ratio", wantExporting: true,
			env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.HTTPEndpoint(), "OTEL_TRACES_SAMPLER_ARG": "0"}},
		{name: "exporter none", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.HTTPEndpoint(), "OTEL_TRACES_EXPORTER": "none"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
				"OTEL_EXPORTER_OTLP_INSECURE", "OTEL_TRACES_EXPORTER", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_SERVICE_NAME"} {
				t.Setenv(k, tt.env[k])
			}
			before := len(receiver.Spans())
			tr, err := observability.NewTracing(context.Background(), "svc")
			if err != nil {
				t.Fatal(err)
			}
			if tr.Exporting() != tt.wantExporting {
				t.Errorf("exporting %v, want %v", tr.Exporting(), tt.wantExporting)
			}
			ctx, span := tr.Tracer("test").Start(context.Background(), tt.name)
			if span.IsRecording() != tt.wantRecording {
				t.Errorf("root span recording %v, want %v", span.IsRecording(), tt.wantRecording)
			}
			if !span.SpanContext().IsValid() || observability.Traceparent(ctx) == "" {
				t.Errorf("a span without a valid id (%v): logs and the outbox need one", span.SpanContext())
			}
			span.End()
			if err := tr.Shutdown(context.Background()); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			var got []otlptest.Span
			for _, s := range receiver.Spans()[before:] {
				if s.Name == tt.name {
					got = append(got, s)
				}
			}
			switch {
			case tt.wantReceived == "" && len(got) > 0:
				t.Errorf("received %d spans, want none", len(got))
			case tt.wantReceived != "" && len(got) != 1:
				t.Errorf("received %d spans by the time Shutdown returned, want 1", len(got))
			case tt.wantReceived != "" && (got[0].Protocol != tt.wantReceived || got[0].Service != tt.wantService):
				t.Errorf("received over %s from %q, want over %s from %q", got[0].Protocol, got[0].Service, tt.wantReceived, tt.wantService)
			}
		})
	}
}

// A stored traceparent becomes the remote parent of the spans started from
// it, and an empty or malformed one leaves the context alone.
func TestWithTraceparent(t *testing.T) {
	t.Parallel()
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name, in, want string
	}{
		{name: "stored trace", in: tp, want: tp},
		{name: "none", in: ""},
		{name: "malformed", in: "00-zz-01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := observability.Traceparent(observability.WithTraceparent(context.Background(), tt.in)); got != tt.want {
				t.Errorf("traceparent %q, want %q", got, tt.want)
			}
		})
	}
}
