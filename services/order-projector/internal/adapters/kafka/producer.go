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

	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	"github.com/orderflow/orderflow/shared/kafkax"
)

// Producer publishes external events and dead letters.
type Producer struct {
	producer sarama.SyncProducer
	external string
	dlq      string
}

// NewProducer connects an idempotent producer (acks from all in-sync
// replicas, one request in flight, so order within a partition holds).
func NewProducer(brokers []string, clientID, externalTopic, dlqTopic string) (*Producer, error) {
	cfg := kafkax.NewConfig(clientID)
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Return.Successes = true
	cfg.Producer.Retry.Max = 5
	cfg.Producer.Retry.Backoff = 200 * time.Millisecond
	cfg.Producer.Compression = sarama.CompressionLZ4
	cfg.Producer.Flush.Frequency = 2 * time.Millisecond
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting the producer: %w", err)
	}
	return &Producer{producer: p, external: externalTopic, dlq: dlqTopic}, nil
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
	return p.producer.SendMessages(msgs)
}

// DeadLetter copies a message that keeps failing to the dead-letter topic,
// with why and where it came from in the headers.
func (p *Producer) DeadLetter(msg *sarama.ConsumerMessage, reason error, attempts int) error {
	headers := []sarama.RecordHeader{
		{Key: []byte("dlq-error"), Value: []byte(reason.Error())},
		{Key: []byte("dlq-attempts"), Value: []byte(strconv.Itoa(attempts))},
		{Key: []byte("dlq-source"), Value: []byte(fmt.Sprintf("%s/%d/%d", msg.Topic, msg.Partition, msg.Offset))},
		{Key: []byte("dlq-at"), Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))},
	}
	for _, h := range msg.Headers {
		headers = append(headers, *h)
	}
	_, _, err := p.producer.SendMessage(&sarama.ProducerMessage{Topic: p.dlq, Key: sarama.ByteEncoder(msg.Key),
		Value: sarama.ByteEncoder(msg.Value), Headers: headers})
	if err != nil {
		return fmt.Errorf("sending to the dead-letter topic: %w", err)
	}
	return nil
}

// Close stops the producer.
func (p *Producer) Close() error { return p.producer.Close() }
