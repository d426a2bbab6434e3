package kafkax_test

import (
	"context"
	"testing"

	"github.com/IBM/sarama"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow/shared/kafkax"
)

// Trace context injected into a message being sent is what the consumer
// extracts from the consumed copy; injecting into a message that already
// carries a traceparent replaces it instead of adding a second one.
func TestTraceRoundTripsThroughHeaders(t *testing.T) {
	t.Parallel()
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	tests := []struct {
		name    string
		headers []sarama.RecordHeader
	}{
		{name: "no headers"},
		{name: "other headers", headers: []sarama.RecordHeader{{Key: []byte(kafkax.HeaderEventID), Value: []byte("e-1")}}},
		{name: "a traceparent already there", headers: []sarama.RecordHeader{
			{Key: []byte(kafkax.HeaderEventID), Value: []byte("e-1")},
			{Key: []byte(kafkax.HeaderTraceparent), Value: []byte("00-11111111111111111111111111111111-2222222222222222-01")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg := &sarama.ProducerMessage{Headers: append([]sarama.RecordHeader(nil), tt.headers...)}
			kafkax.InjectTrace(ctx, propagation.TraceContext{}, msg)
			consumed := &sarama.ConsumerMessage{}
			traceparents := 0
			for i := range msg.Headers {
				consumed.Headers = append(consumed.Headers, &msg.Headers[i])
				if string(msg.Headers[i].Key) == kafkax.HeaderTraceparent {
					traceparents++
				}
			}
			if traceparents != 1 {
				t.Errorf("%d traceparent headers, want 1", traceparents)
			}
			got := trace.SpanContextFromContext(kafkax.ExtractTrace(context.Background(), propagation.TraceContext{}, consumed))
			if got.TraceID() != tid || got.SpanID() != sid || !got.IsSampled() || !got.IsRemote() {
				t.Errorf("extracted %v, want the injected span as a remote parent", got)
			}
			want := len(tt.headers)
			if !hasKey(tt.headers, kafkax.HeaderTraceparent) {
				want++
			}
			if n := len(kafkax.ConsumerHeaders(consumed.Headers).Keys()); n != want {
				t.Errorf("%d headers after the injection, want %d", n, want)
			}
		})
	}
}

func hasKey(hs []sarama.RecordHeader, key string) bool {
	for _, h := range hs {
		if string(h.Key) == key {
			return true
		}
	}
	return false
}
