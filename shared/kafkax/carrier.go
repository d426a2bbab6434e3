package kafkax

import (
	"context"

	"github.com/IBM/sarama"
	"go.opentelemetry.io/otel/propagation"
)

// ProducerHeaders carries trace context into the headers of a message being
// sent (propagation.TextMapCarrier over sarama's record headers). Set
// replaces a header of the same key, so injecting into a message that
// already carries a traceparent leaves only the new one.
type ProducerHeaders struct {
	Headers *[]sarama.RecordHeader
}

// Get returns the value of key, or "".
func (c ProducerHeaders) Get(key string) string {
	for _, h := range *c.Headers {
		if string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}

// Set puts key=value in the headers, replacing a header of that key.
func (c ProducerHeaders) Set(key, value string) {
	for i, h := range *c.Headers {
		if string(h.Key) == key {
			(*c.Headers)[i].Value = []byte(value)
			return
		}
	}
	*c.Headers = append(*c.Headers, sarama.RecordHeader{Key: []byte(key), Value: []byte(value)})
}

// Keys lists the header keys.
func (c ProducerHeaders) Keys() []string {
	keys := make([]string, len(*c.Headers))
	for i, h := range *c.Headers {
		keys[i] = string(h.Key)
	}
	return keys
}

// ConsumerHeaders reads trace context from the headers of a consumed
// message (propagation.TextMapCarrier; Set is a no-op: a consumed message
// is not changed).
type ConsumerHeaders []*sarama.RecordHeader

// Get returns the value of key, or "".
func (c ConsumerHeaders) Get(key string) string {
	for _, h := range c {
		if h != nil && string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}

// Set does nothing.
func (ConsumerHeaders) Set(string, string) {}

// Keys lists the header keys.
func (c ConsumerHeaders) Keys() []string {
	keys := make([]string, 0, len(c))
	for _, h := range c {
		if h != nil {
			keys = append(keys, string(h.Key))
		}
	}
	return keys
}

// InjectTrace writes the trace context of ctx into a message's headers
// (traceparent, and baggage when p carries it).
func InjectTrace(ctx context.Context, p propagation.TextMapPropagator, msg *sarama.ProducerMessage) {
	p.Inject(ctx, ProducerHeaders{Headers: &msg.Headers})
}

// ExtractTrace returns ctx with the remote span context a consumed message
// carries in its headers as the parent of the spans started from it.
func ExtractTrace(ctx context.Context, p propagation.TextMapPropagator, msg *sarama.ConsumerMessage) context.Context {
	return p.Extract(ctx, ConsumerHeaders(msg.Headers))
}
