package eventstream

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/logging"
	"github.com/orderflow/orderflow/shared/observability"
	"github.com/orderflow/orderflow/shared/projection"
)

// testTracing is the handler's tracing in tests, recording nothing.
func testTracing(t *testing.T) *observability.Tracing {
	t.Helper()
	tr, err := observability.NewTracing(context.Background(), "projector-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr
}

// spanSeer is a projector that keeps the event spans Project's context
// carries, by order number, as projection's steps would find them.
type spanSeer struct {
	seen map[int64]trace.SpanContext
	err  error
}

func (s *spanSeer) Project(ctx context.Context, events []*eventsv1.OrderEvent) (projection.Result, error) {
	for _, e := range events {
		s.seen[e.GetOrderNo()] = trace.SpanContextFromContext(projection.OrderContext(ctx, e.GetOrderNo()))
	}
	return projection.Result{}, s.err
}

// Every consumed event is a consumer span whose parent is the span in the
// message's traceparent header (the relay's), handed to the projection by
// order number; the lines logged about one event (here its dead letter)
// carry that event's trace id.
func TestEventSpanContinuesTheMessagesTrace(t *testing.T) {
	t.Parallel()
	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		relay   = "00f067aa0ba902b7"
	)
	tests := []struct {
		name       string
		projectErr error
		wantLetter bool
	}{
		{name: "applied"},
		{name: "dead-lettered", projectErr: errors.New("order 7: unexpected"), wantLetter: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			recorder := tracetest.NewSpanRecorder()
			tr, err := observability.NewTracing(context.Background(), "projector-test", sdktrace.WithSpanProcessor(recorder))
			if err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			logger := logging.New(&logs, slog.LevelInfo, "order-projector")
			p := &spanSeer{seen: map[int64]trace.SpanContext{}, err: tt.projectErr}
			h := newHandler(t, p, &dlqRecorder{}, HandlerConfig{BatchSize: 10, Linger: 1, MaxAttempts: 1, RetryBase: 1, OutageWaitMin: 1, OutageWaitMax: 1},
				NewMetrics(prometheus.NewRegistry()), logger, tr)
			msg := event(t, 7, "OrderPlaced")
			msg.Headers = []*sarama.RecordHeader{{Key: []byte(kafkax.HeaderTraceparent), Value: []byte("00-" + traceID + "-" + relay + "-01")}}
			if err := h.newLane().apply(context.Background(), []*sarama.ConsumerMessage{msg}); err != nil {
				t.Fatal(err)
			}

			spans := recorder.Ended()
			if len(spans) != 1 {
				t.Fatalf("%d spans ended, want the event's", len(spans))
			}
			span := spans[0]
			if span.SpanKind() != trace.SpanKindConsumer || span.SpanContext().TraceID().String() != traceID ||
				span.Parent().SpanID().String() != relay {
				t.Errorf("span %q kind %v trace %s parent %s, want a consumer span in trace %s under the relay's %s",
					span.Name(), span.SpanKind(), span.SpanContext().TraceID(), span.Parent().SpanID(), traceID, relay)
			}
			if got := p.seen[7]; got.SpanID() != span.SpanContext().SpanID() {
				t.Errorf("the projection saw span %s for order 7, want the event's %s", got.SpanID(), span.SpanContext().SpanID())
			}
			logged := strings.Contains(logs.String(), `"trace_id":"`+traceID+`"`) && strings.Contains(logs.String(), "dead-letter")
			if logged != tt.wantLetter {
				t.Errorf("dead letter logged in the event's trace: %v, want %v; log:\n%s", logged, tt.wantLetter, logs.String())
			}
		})
	}
}
