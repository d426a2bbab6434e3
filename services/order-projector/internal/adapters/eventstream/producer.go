// Package eventstream connects the projector to Kafka: the consumer-group handler
// that batches internal events, and the producer of external events and dead
// letters.
package eventstream

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/IBM/sarama"

	"github.com/orderflow/orderflow/services/order-projector/internal/failure"
	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/projection/external"
)

// Producer publishes external events and dead letters.
type Producer struct {
	producer sarama.SyncProducer
	external string
	dlq      string
}

// ProducerConfig names the topics and bounds each request.
type ProducerConfig struct {
	external.ProducerConfig
	ExternalTopic string
	DLQTopic      string
}

// NewProducer connects the read side's producer (external.NewProducer) for
// the external events and the dead letters.
func NewProducer(pc ProducerConfig) (*Producer, error) {
	p, err := external.NewProducer(pc.ProducerConfig)
	if err != nil {
		return nil, err
	}
	return &Producer{producer: p, external: pc.ExternalTopic, dlq: pc.DLQTopic}, nil
}

// Publish sends external events keyed by order number, encoded as every
// publisher of the read side encodes them, each in its order's trace.
func (p *Producer) Publish(ctx context.Context, events []*eventsv1.OrderExternalEvent) error {
	msgs, err := external.Messages(p.external, events)
	if err != nil {
		return err
	}
	external.Trace(ctx, msgs, events)
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
		header(kafkax.DLQHeaderReason, string(dl.Reason)),
		header(kafkax.DLQHeaderError, text),
		header(kafkax.DLQHeaderAttempts, strconv.Itoa(dl.Attempts)),
		header(kafkax.DLQHeaderSource, fmt.Sprintf("%s/%d/%d", msg.Topic, msg.Partition, msg.Offset)),
		header(kafkax.DLQHeaderAt, time.Now().UTC().Format(time.RFC3339Nano)),
	}
	if dl.EventType != "" {
		headers = append(headers, header(kafkax.DLQHeaderEventType, dl.EventType))
	}
	if dl.OrderNo != 0 {
		headers = append(headers, header(kafkax.DLQHeaderOrderNo, strconv.FormatInt(dl.OrderNo, 10)))
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
