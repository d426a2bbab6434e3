// Package dlq works off the projector's dead letters (orders.internal.dlq.v1):
// it lists them with why they failed, shows one, and replays them by
// re-projecting their orders in-process through shared/projection (re-read
// from the shard, version-guarded document write, external events), then
// marks them worked off.
//
// Where the state lives: the DLQ topic itself is never written (Kafka keeps
// it as the record of what failed). Which entries were worked off, and every
// replay's audit record, live in the read side's MongoDB database, next to
// the documents the replays write, because the DLQ belongs to the read side:
// collection dlq_resolved (one document per worked-off entry, _id =
// "topic/partition/offset") and dlq_replays (one document per replay or dry
// run: who, when, why, the filters, the entries, the outcome counts). An
// entry is marked only after its order was applied; undecodable entries are
// never re-projected, only reported, or marked discarded on request.
package dlq

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/orderenum"
)

// Reasons an event was dead-lettered (the dlq-reason header, written by the
// projector).
const (
	ReasonUndecodable      = kafkax.DLQReasonUndecodable
	ReasonUnknownEventType = kafkax.DLQReasonUnknownEventType
	ReasonInvalidOrderNo   = kafkax.DLQReasonInvalidOrderNo
	ReasonInvalidOrder     = kafkax.DLQReasonInvalidOrder
	ReasonRetriesExhausted = kafkax.DLQReasonRetriesExhausted
)

// Ref names one dead letter: its place in the DLQ topic.
type Ref struct {
	Partition int32
	Offset    int64
}

func (r Ref) String() string { return fmt.Sprintf("%d/%d", r.Partition, r.Offset) }

// ParseRef reads "PARTITION/OFFSET" or "PARTITION:OFFSET".
func ParseRef(s string) (Ref, error) {
	p, o, ok := strings.Cut(s, "/")
	if !ok {
		p, o, ok = strings.Cut(s, ":")
	}
	if !ok {
		return Ref{}, fmt.Errorf("%q is not PARTITION/OFFSET", s)
	}
	part, err1 := strconv.ParseInt(p, 10, 32)
	off, err2 := strconv.ParseInt(o, 10, 64)
	if err1 != nil || err2 != nil || part < 0 || off < 0 {
		return Ref{}, fmt.Errorf("%q is not PARTITION/OFFSET", s)
	}
	return Ref{Partition: int32(part), Offset: off}, nil
}

// Entry is one dead letter as read from the topic.
type Entry struct {
	Topic string
	Ref
	// Key is the message key (the order number).
	Key string
	// Headers in the order they were sent.
	Headers []Header
	// Reason is dlq-reason, or inferred from the value and dlq-error.
	Reason string
	// Error is dlq-error.
	Error string
	// Attempts is dlq-attempts.
	Attempts int
	// Source is where the event was consumed from (dlq-source).
	SourceTopic     string
	SourcePartition int32
	SourceOffset    int64
	// EventType and OrderNo come from dlq-event-type/dlq-order-no, else
	// from the decoded value, else event-type and the key.
	EventType string
	OrderNo   int64
	EventID   string
	// At is when it was dead-lettered (dlq-at, else the message time).
	At time.Time
	// Event is the decoded value; nil when it does not decode.
	Event *eventsv1.OrderEvent
	// DecodeError says why the value does not decode as an order event.
	DecodeError string
	// Resolution is set when the entry was worked off.
	Resolution *Resolution
}

// Header is one message header.
type Header struct{ Key, Value string }

// ID is the entry's id in dlq_resolved: "topic/partition/offset".
func (e Entry) ID() string { return e.Topic + "/" + e.Ref.String() }

// Replayable reports whether the entry can be re-projected: its value is an
// order event with an order number. The projector would dead-letter an
// undecodable value again, and its key alone is not trusted.
func (e Entry) Replayable() bool { return e.Event != nil && e.OrderNo > 0 }

func parse(msg *sarama.ConsumerMessage) Entry {
	e := Entry{Topic: msg.Topic, Ref: Ref{Partition: msg.Partition, Offset: msg.Offset}, Key: string(msg.Key), At: msg.Timestamp}
	h := map[string]string{}
	for _, rh := range msg.Headers {
		if rh == nil {
			continue
		}
		e.Headers = append(e.Headers, Header{Key: string(rh.Key), Value: string(rh.Value)})
		if _, dup := h[string(rh.Key)]; !dup {
			h[string(rh.Key)] = string(rh.Value)
		}
	}
	e.Error = h[kafkax.DLQHeaderError]
	e.Attempts, _ = strconv.Atoi(h[kafkax.DLQHeaderAttempts])
	e.EventID = h["event-id"]
	if t, err := time.Parse(time.RFC3339Nano, h[kafkax.DLQHeaderAt]); err == nil {
		e.At = t
	}
	if src := strings.Split(h[kafkax.DLQHeaderSource], "/"); len(src) == 3 {
		p, _ := strconv.ParseInt(src[1], 10, 32)
		e.SourceTopic, e.SourcePartition = src[0], int32(p)
		e.SourceOffset, _ = strconv.ParseInt(src[2], 10, 64)
	}

	ev := &eventsv1.OrderEvent{}
	decodedType := ""
	if err := proto.Unmarshal(msg.Value, ev); err != nil {
		e.DecodeError = err.Error()
	} else if decodedType = ev.GetEventType(); ev.GetOrderNo() < 1 {
		e.DecodeError = fmt.Sprintf("no order number in the event (type %q)", ev.GetEventType())
	} else {
		e.Event = ev
	}

	e.EventType = firstNonEmpty(h[kafkax.DLQHeaderEventType], decodedType, h[kafkax.HeaderEventType])
	if no, err := strconv.ParseInt(h[kafkax.DLQHeaderOrderNo], 10, 64); err == nil && no > 0 {
		e.OrderNo = no
	} else if e.Event != nil {
		e.OrderNo = e.Event.GetOrderNo()
	} else if no, err := strconv.ParseInt(e.Key, 10, 64); err == nil {
		e.OrderNo = no
	}
	if e.EventID == "" {
		e.EventID = e.Event.GetEventId()
	}
	e.Reason = h[kafkax.DLQHeaderReason]
	if e.Reason == "" {
		e.Reason = inferReason(e)
	}
	return e
}

// inferReason classifies dead letters written before the dlq-reason header
// existed: from the value, then from the error text.
func inferReason(e Entry) string {
	switch {
	case e.Event == nil:
		return ReasonUndecodable
	case e.Event.GetOrderNo() < 1:
		return ReasonInvalidOrderNo
	case !orderenum.KnownEventType(e.Event.GetEventType()):
		return ReasonUnknownEventType
	case strings.Contains(strings.ToLower(e.Error), "invalid"):
		return ReasonInvalidOrder
	default:
		return ReasonRetriesExhausted
	}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
