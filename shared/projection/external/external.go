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
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/projection"
)

// ProducerConfig says where to connect and how long a request may take.
type ProducerConfig struct {
	Brokers  []string
	ClientID string
	// Timeout bounds dialling a broker, each network read and write, and
	// the broker's wait for its replicas, so that a hung broker fails a
	// publish within about (Retries+1) × Timeout instead of the client
	// defaults' minutes. Zero keeps sarama's defaults.
	Timeout time.Duration
	// Retries are the client's own retries of a failed request (at least
	// one: the idempotent producer needs it). Zero means 5.
	Retries int
}

// NewProducer connects an idempotent producer (acks from all in-sync
// replicas, one request in flight, so order within a partition holds), the
// one every publisher of the read side uses.
func NewProducer(pc ProducerConfig) (sarama.SyncProducer, error) {
	cfg := kafkax.NewConfig(pc.ClientID)
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	if pc.Timeout > 0 {
		cfg.Net.DialTimeout = pc.Timeout
		cfg.Net.ReadTimeout = pc.Timeout
		cfg.Net.WriteTimeout = pc.Timeout
		cfg.Producer.Timeout = pc.Timeout
	}
	cfg.Producer.Return.Successes = true
	cfg.Producer.Retry.Max = 5
	if pc.Retries > 0 {
		cfg.Producer.Retry.Max = pc.Retries
	}
	cfg.Producer.Retry.Backoff = 200 * time.Millisecond
	cfg.Producer.Compression = sarama.CompressionLZ4
	cfg.Producer.Flush.Frequency = 2 * time.Millisecond
	p, err := sarama.NewSyncProducer(pc.Brokers, cfg)
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

// Publish sends the events, all or an error, each in its order's trace
// (see Trace).
func (p *Publisher) Publish(ctx context.Context, events []*eventsv1.OrderExternalEvent) error {
	msgs, err := Messages(p.topic, events)
	if err != nil {
		return err
	}
	Trace(ctx, msgs, events)
	if err := p.producer.SendMessages(msgs); err != nil {
		return fmt.Errorf("sending external events: %w", err)
	}
	return nil
}

// Trace puts a W3C traceparent header on each message of Messages(events):
// the context of its order's span in ctx (projection.OrderContext: the
// projector's step span under the order's event span), so a consumer of
// orders.external.v1 continues the order's trace. Messages of orders
// without a span in ctx get none.
func Trace(ctx context.Context, msgs []*sarama.ProducerMessage, events []*eventsv1.OrderExternalEvent) {
	for i, m := range msgs {
		orderCtx := projection.OrderContext(ctx, events[i].GetOrder().GetOrderNo())
		if trace.SpanContextFromContext(orderCtx).IsValid() {
			kafkax.InjectTrace(orderCtx, propagation.TraceContext{}, m)
		}
	}
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
				{Key: []byte(kafkax.HeaderEventType), Value: []byte(e.GetEventType())},
				{Key: []byte(kafkax.HeaderEventID), Value: []byte(e.GetEventId())},
			},
		})
	}
	return msgs, nil
}
