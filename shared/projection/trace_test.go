package projection_test

import (
	"context"
	"slices"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/projection"
	"github.com/orderflow/orderflow/shared/projection/external"
)

// traceHeaders is a journal that also keeps the traceparent header each
// external event's message would carry.
type traceHeaders struct {
	*journal
	headers []string
}

func (h *traceHeaders) Publish(ctx context.Context, events []*eventsv1.OrderExternalEvent) error {
	msgs, err := external.Messages("orders.external.v1", events)
	if err != nil {
		return err
	}
	external.Trace(ctx, msgs, events)
	for _, m := range msgs {
		h.headers = append(h.headers, kafkax.ProducerHeaders{Headers: &m.Headers}.Get(kafkax.HeaderTraceparent))
	}
	return h.journal.Publish(ctx, events)
}

// With the batch's event spans in the context, each step of Project is a
// child span of the event's span, and the external events carry the publish
// step's span in their traceparent header. A sampled-out event gets no
// steps, and a context without event spans records none.
func TestProjectStepsAreChildrenOfTheEventSpan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		sampled   bool
		withSpans bool
		wantSteps []string
	}{
		{name: "sampled event", sampled: true, withSpans: true,
			wantSteps: []string{"publish external events", "read documents", "reread orders", "write documents"}},
		{name: "event not sampled", withSpans: true},
		{name: "no event spans (orderctl)", sampled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			recorder := tracetest.NewSpanRecorder()
			sampler := sdktrace.NeverSample()
			if tt.sampled {
				sampler = sdktrace.AlwaysSample()
			}
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder), sdktrace.WithSampler(sampler))
			_, event := tp.Tracer("test").Start(context.Background(), "process orders.internal.v1")
			ctx := context.Background()
			if tt.withSpans {
				ctx = projection.WithEventSpans(ctx, map[int64][]trace.Span{42: {event}})
			}
			j := &traceHeaders{journal: &journal{}}
			p := projection.New(oneOrder{}, j.journal, j, time.Now, nil)
			if _, err := p.Project(ctx, []*eventsv1.OrderEvent{{OrderNo: 42, OrderVersion: 3, EventType: "OrderCancelled"}}); err != nil {
				t.Fatal(err)
			}
			event.End()

			var steps []string
			var publish trace.SpanContext
			for _, s := range recorder.Ended() {
				if s.SpanContext().SpanID() == event.SpanContext().SpanID() {
					continue
				}
				steps = append(steps, s.Name())
				if s.Parent().SpanID() != event.SpanContext().SpanID() || s.SpanContext().TraceID() != event.SpanContext().TraceID() {
					t.Errorf("step %q has parent %s, want the event's span %s", s.Name(), s.Parent().SpanID(), event.SpanContext().SpanID())
				}
				if s.Name() == "publish external events" {
					publish = s.SpanContext()
				}
			}
			slices.Sort(steps)
			if !slices.Equal(steps, tt.wantSteps) {
				t.Errorf("steps %v, want %v", steps, tt.wantSteps)
			}
			if len(j.headers) != 3 {
				t.Fatalf("%d external events, want 3", len(j.headers))
			}
			want := ""
			switch {
			case publish.IsValid():
				want = "00-" + publish.TraceID().String() + "-" + publish.SpanID().String() + "-01"
			case tt.withSpans: // not sampled: the event's own span, flags 00
				want = "00-" + event.SpanContext().TraceID().String() + "-" + event.SpanContext().SpanID().String() + "-00"
			}
			for i, h := range j.headers {
				if h != want {
					t.Errorf("external event %d traceparent %q, want %q", i, h, want)
				}
			}
		})
	}
}
