// Package kafka connects the projector to Kafka: the consumer-group handler
// that batches internal events, and the producer of external events and dead
// letters.
package kafka

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"google.golang.org/protobuf/proto"

	"github.com/orderflow/orderflow/services/order-projector/internal/failure"
	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	"github.com/orderflow/orderflow/shared/kafkax"
)

// Producer publishes external events and dead letters.
type Producer struct {
	producer sarama.SyncProducer
	external string
	dlq      string
}

// ProducerConfig names the topics and bounds each request.
type ProducerConfig struct {
	Brokers       []string
	ClientID      string
	ExternalTopic string
	DLQTopic      string
	// Timeout bounds dialling a broker, each network read and write, and
	// the broker's wait for its replicas, so that a hung broker fails a
	// publish within about (Retries+1) × Timeout instead of the client
	// defaults' minutes.
	Timeout time.Duration
	// Retries are the client's own retries of a failed request.
	Retries int
}

// NewProducer connects an idempotent producer (acks from all in-sync
// replicas, one request in flight, so order within a partition holds).
func NewProducer(pc ProducerConfig) (*Producer, error) {
	cfg := kafkax.NewConfig(pc.ClientID)
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	cfg.Net.DialTimeout = pc.Timeout
	cfg.Net.ReadTimeout = pc.Timeout
	cfg.Net.WriteTimeout = pc.Timeout
	cfg.Producer.Timeout = pc.Timeout
	cfg.Producer.Return.Successes = true
	cfg.Producer.Retry.Max = max(pc.Retries, 1) // the idempotent producer needs at least one
	cfg.Producer.Retry.Backoff = 200 * time.Millisecond
	cfg.Producer.Compression = sarama.CompressionLZ4
	cfg.Producer.Flush.Frequency = 2 * time.Millisecond
	p, err := sarama.NewSyncProducer(pc.Brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting the producer: %w", err)
	}
	return &Producer{producer: p, external: pc.ExternalTopic, dlq: pc.DLQTopic}, nil
}

// Publish sends external events keyed by order number.
func (p *Producer) Publish(_ context.Context, events []*eventsv1.OrderExternalEvent) error {
	msgs := make([]*sarama.ProducerMessage, 0, len(events))
	for _, e := range events {
		value, err := proto.Marshal(e)
		if err != nil {
			return fmt.Errorf("encoding external event %s: %w", e.GetEventId(), err)
		}
		msgs = append(msgs, &sarama.ProducerMessage{
			Topic: p.external, Key: sarama.StringEncoder(strconv.FormatInt(e.GetOrder().GetOrderNo(), 10)),
			Value: sarama.ByteEncoder(value), Timestamp: e.GetOccurredAt().AsTime(),
			Headers: []sarama.RecordHeader{
				{Key: []byte("event-type"), Value: []byte(e.GetEventType())},
				{Key: []byte("event-id"), Value: []byte(e.GetEventId())},
			},
		})
	}
	return failure.In(failure.Kafka, p.producer.SendMessages(msgs))
}

// DeadLetter is why an event is set aside.
type DeadLetter struct {
	// Reason is the machine-readable reason (dlq-reason).
	Reason failure.Reason
	// Err is the error that decided it (dlq-error).
	Err error
	// Attempts is how many times the event was tried (dlq-attempts).
	Attempts int
	// EventType and OrderNo are the event's, when it decoded (zero when not).
	EventType string
	OrderNo   int64
}

// The dead letter's headers, which operator tools read (orderctl dlq).
const (
	// HeaderReason is the machine-readable reason: undecodable,
	// unknown_event_type, invalid_order_no, invalid_order or
	// retries_exhausted.
	HeaderReason = "dlq-reason"
	// HeaderError is the error's text.
	HeaderError = "dlq-error"
	// HeaderAttempts is how many times the event was tried, in decimal.
	HeaderAttempts = "dlq-attempts"
	// HeaderSource is topic/partition/offset of the original message.
	HeaderSource = "dlq-source"
	// HeaderAt is when it was dead-lettered, RFC 3339 with nanoseconds, UTC.
	HeaderAt = "dlq-at"
	// HeaderEventType is the event's type, when the message decoded.
	HeaderEventType = "dlq-event-type"
	// HeaderOrderNo is the event's order number in decimal, when the
	// message decoded.
	HeaderOrderNo = "dlq-order-no"
)

// DeadLetter copies a message that cannot be applied to the dead-letter
// topic: same key and value, the original headers, and in front of them
// dlq-reason, dlq-error, dlq-attempts, dlq-source and dlq-at, plus
// dlq-event-type and dlq-order-no when the message decoded as an event.
func (p *Producer) DeadLetter(msg *sarama.ConsumerMessage, dl DeadLetter) error {
	header := func(k, v string) sarama.RecordHeader { return sarama.RecordHeader{Key: []byte(k), Value: []byte(v)} }
	text := "unknown"
	if dl.Err != nil {
		text = dl.Err.Error()
	}
	headers := []sarama.RecordHeader{
		header(HeaderReason, string(dl.Reason)),
		header(HeaderError, text),
		header(HeaderAttempts, strconv.Itoa(dl.Attempts)),
		header(HeaderSource, fmt.Sprintf("%s/%d/%d", msg.Topic, msg.Partition, msg.Offset)),
		header(HeaderAt, time.Now().UTC().Format(time.RFC3339Nano)),
	}
	if dl.EventType != "" {
		headers = append(headers, header(HeaderEventType, dl.EventType))
	}
	if dl.OrderNo != 0 {
		headers = append(headers, header(HeaderOrderNo, strconv.FormatInt(dl.OrderNo, 10)))
	}
	for _, h := range msg.Headers {
		headers = append(headers, *h)
	}
	_, _, err := p.producer.SendMessage(&sarama.ProducerMessage{Topic: p.dlq, Key: sarama.ByteEncoder(msg.Key),
		Value: sarama.ByteEncoder(msg.Value), Headers: headers})
	if err != nil {
		return failure.In(failure.Kafka, fmt.Errorf("sending to the dead-letter topic: %w", err))
	}
	return nil
}

// Close stops the producer.
func (p *Producer) Close() error { return p.producer.Close() }
