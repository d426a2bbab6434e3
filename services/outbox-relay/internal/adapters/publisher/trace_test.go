package publisher

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/observability"
	"github.com/orderflow/orderflow/shared/outbox"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// testTracing is the publisher's tracing in tests, recording nothing.
func testTracing(t *testing.T) *observability.Tracing {
	t.Helper()
	tr, err := observability.NewTracing(context.Background(), "relay-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr
}

// Each row's send is a span continuing the trace stored on the row, and the
// message carries that span (not the row's stored context) in its
// traceparent header, so the consumer's span is the relay span's child. A
// row with no stored trace still gets a span and a header of its own.
func TestPublishSpanContinuesTheRowsTrace(t *testing.T) {
	t.Parallel()
	const stored = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	cases := []struct {
		name        string
		traceparent string
		wantTrace   string // "" when a new trace is started
		wantParent  string
	}{
		{name: "row with a sampled trace", traceparent: stored, wantTrace: "4bf92f3577b34da6a3ce929d0e0e4736", wantParent: "00f067aa0ba902b7"},
		{name: "row without a trace", traceparent: ""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			recorder := tracetest.NewSpanRecorder()
			tr, err := observability.NewTracing(context.Background(), "relay-test",
				sdktrace.WithSpanProcessor(recorder), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
			if err != nil {
				t.Fatal(err)
			}
			topic := testinfra.KafkaTopic(t, 1)
			p := NewPublisher(testinfra.KafkaBrokers(), topic, "relay-test", tr)
			t.Cleanup(func() { _ = p.Close() })
			m := message(int64(100 + i))
			m.Traceparent = c.traceparent
			if errs := p.Publish(context.Background(), []outbox.Message{m}); errs[0] != nil {
				t.Fatalf("publish: %v", errs[0])
			}

			spans := recorder.Ended()
			if len(spans) != 1 {
				t.Fatalf("%d spans ended, want 1", len(spans))
			}
			span := spans[0]
			if span.SpanKind() != trace.SpanKindProducer || span.Name() != "publish "+topic {
				t.Errorf("span %q of kind %v, want a producer span %q", span.Name(), span.SpanKind(), "publish "+topic)
			}
			if c.wantTrace != "" {
				if got := span.SpanContext().TraceID().String(); got != c.wantTrace {
					t.Errorf("trace %s, want the row's %s", got, c.wantTrace)
				}
				if got := span.Parent().SpanID().String(); got != c.wantParent || !span.Parent().IsRemote() {
					t.Errorf("parent %s (remote %v), want the row's span %s", got, span.Parent().IsRemote(), c.wantParent)
				}
			} else if span.Parent().IsValid() {
				t.Errorf("a row without a trace got parent %s", span.Parent().SpanID())
			}

			got := consumeOne(t, topic)
			header := kafkax.ConsumerHeaders(got.Headers).Get(kafkax.HeaderTraceparent)
			want := "00-" + span.SpanContext().TraceID().String() + "-" + span.SpanContext().SpanID().String() + "-01"
			if header != want {
				t.Errorf("traceparent header %q, want the relay span's %q", header, want)
			}
			if n := len(kafkax.ConsumerHeaders(got.Headers).Keys()); n != 3 {
				t.Errorf("%d headers, want event-type, event-id and one traceparent", n)
			}
		})
	}
}

func consumeOne(t *testing.T, topic string) *sarama.ConsumerMessage {
	t.Helper()
	consumer, err := sarama.NewConsumer(testinfra.KafkaBrokers(), kafkax.NewConfig("relay-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	select {
	case m := <-pc.Messages():
		return m
	case <-time.After(15 * time.Second):
		t.Fatal("no message within 15 s")
		return nil
	}
}
