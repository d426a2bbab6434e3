package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow/shared/logging"
)

// Every line logged with a context that carries a span has the span's
// trace_id and span_id, also through With and WithGroup, and also when the
// span is not recorded (tracing without export: the ids still tie the
// logs to the outbox row and the Kafka headers); a line without a span has
// neither.
func TestLinesCarryTheTraceOfTheirContext(t *testing.T) {
	t.Parallel()
	sampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	unsampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	t.Cleanup(func() {
		_ = sampled.Shutdown(context.Background())
		_ = unsampled.Shutdown(context.Background())
	})
	start := func(tp *sdktrace.TracerProvider) (context.Context, trace.SpanContext) {
		ctx, span := tp.Tracer("test").Start(context.Background(), "request")
		t.Cleanup(func() { span.End() })
		return ctx, span.SpanContext()
	}
	sampledCtx, sampledSC := start(sampled)
	unsampledCtx, unsampledSC := start(unsampled)

	cases := []struct {
		name string
		ctx  context.Context
		want trace.SpanContext // zero: no ids on the line
		log  func(l *slog.Logger, ctx context.Context)
	}{
		{name: "recorded span", ctx: sampledCtx, want: sampledSC,
			log: func(l *slog.Logger, ctx context.Context) { l.InfoContext(ctx, "request served") }},
		{name: "unrecorded span", ctx: unsampledCtx, want: unsampledSC,
			log: func(l *slog.Logger, ctx context.Context) { l.WarnContext(ctx, "request served") }},
		{name: "through With and WithGroup", ctx: sampledCtx, want: sampledSC,
			log: func(l *slog.Logger, ctx context.Context) {
				l.With(slog.String("shard", "shard-0")).WithGroup("batch").ErrorContext(ctx, "batch failed", slog.Int("rows", 3))
			}},
		{name: "no span", ctx: context.Background(),
			log: func(l *slog.Logger, ctx context.Context) { l.InfoContext(ctx, "started") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			c.log(logging.New(&buf, slog.LevelDebug, "test"), c.ctx)
			var line map[string]any
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("%v: %s", err, buf.String())
			}
			traceID, spanID := line["trace_id"], line["span_id"]
			if !c.want.IsValid() {
				if traceID != nil || spanID != nil {
					t.Errorf("line without a span has trace_id %v span_id %v", traceID, spanID)
				}
				return
			}
			if traceID != c.want.TraceID().String() || spanID != c.want.SpanID().String() || line["service"] != "test" {
				t.Errorf("line %s: want trace_id %s span_id %s service test", buf.String(), c.want.TraceID(), c.want.SpanID())
			}
		})
	}
}
