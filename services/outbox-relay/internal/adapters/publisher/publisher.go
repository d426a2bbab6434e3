// Package publisher publishes outbox rows to Kafka with an idempotent sarama
// producer: acks from all in-sync replicas, one request in flight per broker
// (so retries cannot reorder a partition), the order number as the key (one
// order's events share a partition).
package publisher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/eapache/go-resiliency/breaker"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/observability"
	"github.com/orderflow/orderflow/shared/orderenum"
	"github.com/orderflow/orderflow/shared/outbox"
)

// tracerScope names the publisher's spans.
const tracerScope = "github.com/orderflow/orderflow/services/outbox-relay/internal/adapters/publisher"

// errProducerUnavailable wraps a failure to create the producer.
var errProducerUnavailable = errors.New("connecting the producer")

// Publisher implements relay.Publisher.
type Publisher struct {
	brokers    []string
	topic      string
	cfg        *sarama.Config
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator

	// mu guards producer: sends hold it shared for their whole duration, so
	// that dropping the producer (exclusive) never closes it under a send in
	// flight, which sarama answers with a panic.
	mu       sync.RWMutex
	producer sarama.SyncProducer
	// built counts the producers created (for tests: a check that dropped
	// the producer shows as one more build).
	built atomic.Int64
}

// Timeouts of the producer. They are short so that a broker that stops
// answering (a frozen process, a network that drops packets) fails a send
// within seconds: the relay then waits with back-off, spending no attempts,
// instead of holding its shards for sarama's 30 s defaults. Connecting to a
// frozen broker fails after three reads (two ApiVersions tries and the
// metadata request: 6 s); a send in flight to one that froze after about
// ioTimeout × (1 + sendRetries) plus a metadata refresh.
const (
	dialTimeout     = 2 * time.Second
	ioTimeout       = 2 * time.Second
	produceTimeout  = 1500 * time.Millisecond // the broker's wait for in-sync replicas; below ioTimeout
	metadataTimeout = 3 * time.Second
	sendRetries     = 1 // the relay retries cluster failures itself, with back-off
)

// NewPublisher returns a publisher to topic. The producer connects lazily and
// is rebuilt after Kafka was unreachable. Every row's send is a span of
// tracing that continues the row's stored trace.
func NewPublisher(brokers []string, topic, clientID string, tracing *observability.Tracing) *Publisher {
	cfg := kafkax.NewConfig(clientID)
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Retry.Max = sendRetries
	cfg.Producer.Retry.Backoff = 250 * time.Millisecond
	cfg.Producer.Timeout = produceTimeout
	cfg.Net.DialTimeout = dialTimeout
	cfg.Net.ReadTimeout = ioTimeout
	cfg.Net.WriteTimeout = ioTimeout
	cfg.Metadata.Timeout = metadataTimeout
	cfg.Metadata.Retry.Max = 1
	cfg.Producer.Compression = sarama.CompressionLZ4
	// Let a batch of rows leave as few produce requests as possible.
	cfg.Producer.Flush.Frequency = 2 * time.Millisecond
	cfg.Producer.Flush.MaxMessages = 0
	cfg.ChannelBufferSize = 4096
	return &Publisher{brokers: brokers, topic: topic, cfg: cfg,
		tracer: tracing.Tracer(tracerScope), propagator: tracing.Propagator}
}

// Encode turns a row into the Kafka message the relay sends.
// A row whose event type is not an internal event of the order domain is
// refused: consumers would not know what to do with it.
func Encode(topic string, m outbox.Message) (*sarama.ProducerMessage, error) {
	if !orderenum.KnownEventType(m.EventType) {
		return nil, fmt.Errorf("event %s has unknown event type %q", m.EventID, m.EventType)
	}
	value, err := proto.Marshal(&eventsv1.OrderEvent{
		EventId: m.EventID, EventType: m.EventType, OrderNo: m.OrderNo, OrderVersion: m.OrderVersion,
		OccurredAt: timestamppb.New(m.OccurredAt), Traceparent: m.Traceparent,
	})
	if err != nil {
		return nil, fmt.Errorf("encoding event %s: %w", m.EventID, err)
	}
	headers := []sarama.RecordHeader{
		{Key: []byte(kafkax.HeaderEventType), Value: []byte(m.EventType)},
		{Key: []byte(kafkax.HeaderEventID), Value: []byte(m.EventID)},
	}
	if m.Traceparent != "" {
		headers = append(headers, sarama.RecordHeader{Key: []byte(kafkax.HeaderTraceparent), Value: []byte(m.Traceparent)})
	}
	return &sarama.ProducerMessage{
		Topic: topic, Key: sarama.StringEncoder(strconv.FormatInt(m.OrderNo, 10)), Value: sarama.ByteEncoder(value),
		Headers: headers, Timestamp: m.OccurredAt,
	}, nil
}

// Publish sends the rows and returns, per row, nil when Kafka acknowledged it.
// Each row's send is a producer span whose parent is the trace context stored
// on the row (the command that wrote it), not the relay's loop, and the
// message's traceparent header is that span's context, so the consumer's
// span follows the relay's. The event's own traceparent field keeps the
// write's context. When the cluster failed the send (see Transient), the producer that sent
// it is dropped, so that the next send starts a fresh one with fresh
// metadata and closed circuit breakers instead of sarama's 10 s breaker.
// This is the only place a producer is dropped while the publisher runs.
func (p *Publisher) Publish(ctx context.Context, msgs []outbox.Message) []error {
	results := make([]error, len(msgs))
	producer, err := p.acquire()
	if err != nil {
		for i := range results {
			results[i] = err
		}
		return results
	}
	spans := make([]trace.Span, len(msgs))
	defer func() {
		for i, span := range spans {
			if err := results[i]; err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, "not published")
			}
			span.End()
		}
	}()
	batch := make([]*sarama.ProducerMessage, 0, len(msgs))
	for i, m := range msgs {
		var spanCtx context.Context
		spanCtx, spans[i] = p.startSpan(ctx, m)
		pm, err := Encode(p.topic, m)
		if err != nil {
			results[i] = err
			continue
		}
		kafkax.InjectTrace(spanCtx, p.propagator, pm)
		pm.Metadata = i
		batch = append(batch, pm)
	}
	err = producer.SendMessages(batch)
	p.mu.RUnlock()
	var perMessage sarama.ProducerErrors
	switch {
	case err == nil:
	case errors.As(err, &perMessage):
		for _, pe := range perMessage {
			results[pe.Msg.Metadata.(int)] = pe.Err
		}
	default:
		for _, pm := range batch {
			results[pm.Metadata.(int)] = err
		}
	}
	for _, err := range results {
		if err != nil && p.Transient(err) {
			p.drop(producer)
			break
		}
	}
	return results
}

// startSpan starts the span of one row's send as a child of the row's
// stored trace context (a row without one starts a trace of its own).
func (p *Publisher) startSpan(ctx context.Context, m outbox.Message) (context.Context, trace.Span) {
	return p.tracer.Start(observability.WithTraceparent(ctx, m.Traceparent), "publish "+p.topic,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "kafka"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", p.topic),
			attribute.Int64("orderflow.order_no", m.OrderNo),
			attribute.Int("orderflow.order_version", int(m.OrderVersion)),
			attribute.String("orderflow.event_id", m.EventID),
			attribute.String("orderflow.event_type", m.EventType),
			attribute.Int64("orderflow.outbox_id", m.ID),
		))
}

// transientKafkaErrors are broker answers that say the cluster cannot take
// the message right now (leadership moving, topic not there yet, replicas
// catching up), not that the message is bad.
var transientKafkaErrors = []error{
	sarama.ErrUnknownTopicOrPartition, sarama.ErrLeaderNotAvailable, sarama.ErrNotLeaderForPartition,
	sarama.ErrRequestTimedOut, sarama.ErrBrokerNotAvailable, sarama.ErrNetworkException,
	sarama.ErrNotEnoughReplicas, sarama.ErrNotEnoughReplicasAfterAppend, sarama.ErrKafkaStorageError,
	sarama.ErrOutOfBrokers, sarama.ErrNotConnected, sarama.ErrClosedClient, sarama.ErrShuttingDown,
	sarama.ErrControllerNotAvailable, breaker.ErrBreakerOpen, io.EOF, context.DeadlineExceeded,
}

// Transient tells a failure of the cluster (wait, do not blame the row) from
// a failure of the row (spend one of its attempts). It only looks at err.
func (p *Publisher) Transient(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, errProducerUnavailable) {
		return true
	}
	for _, t := range transientKafkaErrors {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// Healthy asks the cluster for metadata, with its own connection: it only
// looks, and leaves the producer that other shards' sends use alone.
func (p *Publisher) Healthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return kafkax.Ping(ctx, p.brokers)
}

// acquire returns the producer, creating it when there is none, with mu
// held shared; the caller releases it (RUnlock) when its send is done.
func (p *Publisher) acquire() (sarama.SyncProducer, error) {
	for {
		p.mu.RLock()
		if p.producer != nil {
			return p.producer, nil
		}
		p.mu.RUnlock()
		p.mu.Lock()
		if p.producer == nil {
			producer, err := sarama.NewSyncProducer(p.brokers, p.cfg)
			if err != nil {
				p.mu.Unlock()
				return nil, fmt.Errorf("%w: %w", errProducerUnavailable, err)
			}
			p.producer = producer
			p.built.Add(1)
		}
		p.mu.Unlock()
	}
}

// drop closes failed if it is still the current producer. A send that
// failed on a producer another shard's send has already replaced leaves
// the new one alone.
func (p *Publisher) drop(failed sarama.SyncProducer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.producer != nil && p.producer == failed {
		_ = p.producer.Close()
		p.producer = nil
	}
}

// Close stops the producer.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.producer != nil {
		_ = p.producer.Close()
		p.producer = nil
	}
	return nil
}
