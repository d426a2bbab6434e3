// Package external publishes the projection's external events to Kafka:
// keyed by order number, with the event type and the stable event id in the
// headers, so every publisher of the read side (the projector, orderctl's
// replays and rebuilds) sends the same message for the same order version.
package external

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

// NewProducer connects an idempotent producer (acks from all in-sync
// replicas, one request in flight, so order within a partition holds).
func NewProducer(brokers []string, clientID string) (sarama.SyncProducer, error) {
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
	return p, nil
}

// Publisher implements projection.External over a sync producer.
type Publisher struct {
	producer sarama.SyncProducer
	topic    string
}

// NewPublisher returns a publisher sending to topic.
func NewPublisher(producer sarama.SyncProducer, topic string) *Publisher {
	return &Publisher{producer: producer, topic: topic}
}

// Publish sends the events, all or an error.
func (p *Publisher) Publish(_ context.Context, events []*eventsv1.OrderExternalEvent) error {
	msgs, err := Messages(p.topic, events)
	if err != nil {
		return err
	}
	if err := p.producer.SendMessages(msgs); err != nil {
		return fmt.Errorf("sending external events: %w", err)
	}
	return nil
}

// Messages encodes external events as Kafka messages for topic.
func Messages(topic string, events []*eventsv1.OrderExternalEvent) ([]*sarama.ProducerMessage, error) {
	msgs := make([]*sarama.ProducerMessage, 0, len(events))
	for _, e := range events {
		value, err := proto.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encoding external event %s: %w", e.GetEventId(), err)
		}
		msgs = append(msgs, &sarama.ProducerMessage{
			Topic: topic, Key: sarama.StringEncoder(strconv.FormatInt(e.GetOrder().GetOrderNo(), 10)),
			Value: sarama.ByteEncoder(value), Timestamp: e.GetOccurredAt().AsTime(),
			Headers: []sarama.RecordHeader{
				{Key: []byte("event-type"), Value: []byte(e.GetEventType())},
				{Key: []byte("event-id"), Value: []byte(e.GetEventId())},
			},
		})
	}
	return msgs, nil
}
