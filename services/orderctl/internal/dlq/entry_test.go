package dlq

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
)

func TestParseRef(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Ref
		ok   bool
	}{
		{in: "3/118", want: Ref{3, 118}, ok: true},
		{in: "0:7", want: Ref{0, 7}, ok: true},
		{in: "3", ok: false},
		{in: "-1/2", ok: false},
		{in: "a/b", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseRef(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("ParseRef(%q) = %v, %v", tt.in, got, err)
			}
		})
	}
}

func TestPageToken(t *testing.T) {
	t.Parallel()
	r := Ref{Partition: 4, Offset: 99}
	got, err := decodeToken(encodeToken(r))
	if err != nil || got == nil || *got != r {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	for _, bad := range []string{"x", encodeToken(r)[:3], "ZGxxMjo0Lzk5"} {
		if _, err := decodeToken(bad); err == nil {
			t.Errorf("token %q accepted", bad)
		}
	}
}

func msg(value []byte, headers map[string]string) *sarama.ConsumerMessage {
	m := &sarama.ConsumerMessage{Topic: "dlq", Partition: 1, Offset: 5, Key: []byte("42"), Value: value, Timestamp: time.Unix(100, 0)}
	for k, v := range headers {
		m.Headers = append(m.Headers, &sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
	}
	return m
}

func value(t *testing.T, no int64, typ string) []byte {
	t.Helper()
	b, err := proto.Marshal(&eventsv1.OrderEvent{OrderNo: no, EventType: typ, EventId: "e"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The reason, order and event type come from the newer headers when
// present, else from the value and dlq-error.
func TestParseEntry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		msg        *sarama.ConsumerMessage
		reason     string
		orderNo    int64
		eventType  string
		replayable bool
	}{
		{name: "new headers", msg: msg(value(t, 42, "OrderPlaced"), map[string]string{"dlq-reason": "invalid_order", "dlq-order-no": "42", "dlq-event-type": "OrderPlaced"}),
			reason: ReasonInvalidOrder, orderNo: 42, eventType: "OrderPlaced", replayable: true},
		{name: "old headers, retries", msg: msg(value(t, 42, "OrderAccepted"), map[string]string{"dlq-error": "writing documents: timeout"}),
			reason: ReasonRetriesExhausted, orderNo: 42, eventType: "OrderAccepted", replayable: true},
		{name: "old headers, unknown type", msg: msg(value(t, 42, "OrderTeleported"), map[string]string{"dlq-error": "undecodable: not an order event"}),
			reason: ReasonUnknownEventType, orderNo: 42, eventType: "OrderTeleported", replayable: true},
		{name: "garbage", msg: msg([]byte{0xff, 0xff}, map[string]string{"dlq-error": "undecodable: proto", "event-type": "OrderPlaced"}),
			reason: ReasonUndecodable, orderNo: 42, eventType: "OrderPlaced"},
		{name: "no order number", msg: msg(value(t, 0, "OrderPlaced"), nil), reason: ReasonUndecodable, eventType: "OrderPlaced", orderNo: 42},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := parse(tt.msg)
			if e.Reason != tt.reason || e.OrderNo != tt.orderNo || e.EventType != tt.eventType || e.Replayable() != tt.replayable || e.ID() != "dlq/1/5" {
				t.Errorf("parsed %+v: want reason %s, order %d, type %s, replayable %v", e, tt.reason, tt.orderNo, tt.eventType, tt.replayable)
			}
		})
	}
}
