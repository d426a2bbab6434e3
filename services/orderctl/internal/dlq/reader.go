package dlq

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/IBM/sarama"

	"github.com/orderflow/orderflow/shared/kafkax"
)

// ErrNotFound means no dead letter is at the given place.
var ErrNotFound = errors.New("no such dead letter")

// Reader reads the dead-letter topic from its oldest retained message to
// the end as it was when the read started; it never commits offsets or
// joins a group, so it leaves the topic as it found it.
type Reader struct {
	client sarama.Client
	topic  string
}

// NewReader connects to brokers for topic.
func NewReader(brokers []string, topic string) (*Reader, error) {
	return NewReaderWithConfig(brokers, topic, kafkax.NewConfig("orderctl-dlq"))
}

// NewReaderWithConfig connects to brokers for topic with a client
// configuration of the caller's (shorter timeouts, for example).
func NewReaderWithConfig(brokers []string, topic string, cfg *sarama.Config) (*Reader, error) {
	if topic == "" {
		return nil, errors.New("dlq: the dead-letter topic is required")
	}
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to kafka: %w", err)
	}
	return &Reader{client: client, topic: topic}, nil
}

// Topic is the dead-letter topic read.
func (r *Reader) Topic() string { return r.topic }

// Close releases the connection.
func (r *Reader) Close() error { return r.client.Close() }

// Scan calls fn for every entry, partition by partition, oldest first.
func (r *Reader) Scan(ctx context.Context, fn func(Entry) error) error {
	parts, err := r.client.Partitions(r.topic)
	if err != nil {
		return fmt.Errorf("listing the partitions of %s: %w", r.topic, err)
	}
	slices.Sort(parts)
	consumer, err := sarama.NewConsumerFromClient(r.client)
	if err != nil {
		return fmt.Errorf("starting a consumer: %w", err)
	}
	defer consumer.Close()
	for _, p := range parts {
		oldest, newest, err := r.bounds(p)
		if err != nil {
			return err
		}
		if oldest >= newest {
			continue
		}
		if err := r.consume(ctx, consumer, p, oldest, newest, fn); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reader) bounds(p int32) (oldest, newest int64, err error) {
	if oldest, err = r.client.GetOffset(r.topic, p, sarama.OffsetOldest); err != nil {
		return 0, 0, fmt.Errorf("reading the oldest offset of %s/%d: %w", r.topic, p, err)
	}
	if newest, err = r.client.GetOffset(r.topic, p, sarama.OffsetNewest); err != nil {
		return 0, 0, fmt.Errorf("reading the newest offset of %s/%d: %w", r.topic, p, err)
	}
	return oldest, newest, nil
}

// consume reads partition p from offset from up to (not including) until.
func (r *Reader) consume(ctx context.Context, consumer sarama.Consumer, p int32, from, until int64, fn func(Entry) error) error {
	pc, err := consumer.ConsumePartition(r.topic, p, from)
	if err != nil {
		return fmt.Errorf("reading %s/%d: %w", r.topic, p, err)
	}
	defer pc.Close()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case cerr := <-pc.Errors():
			return fmt.Errorf("reading %s/%d: %w", r.topic, p, cerr)
		case msg := <-pc.Messages():
			if msg.Offset >= until {
				return nil
			}
			if err := fn(parse(msg)); err != nil {
				return err
			}
			if msg.Offset >= until-1 {
				return nil
			}
		}
	}
}

// Get reads the entry at ref.
func (r *Reader) Get(ctx context.Context, ref Ref) (Entry, error) {
	oldest, newest, err := r.bounds(ref.Partition)
	if err != nil {
		return Entry{}, err
	}
	if ref.Offset < oldest || ref.Offset >= newest {
		return Entry{}, fmt.Errorf("%w at %s/%s (partition holds %d to %d)", ErrNotFound, r.topic, ref, oldest, newest-1)
	}
	consumer, err := sarama.NewConsumerFromClient(r.client)
	if err != nil {
		return Entry{}, fmt.Errorf("starting a consumer: %w", err)
	}
	defer consumer.Close()
	var found *Entry
	err = r.consume(ctx, consumer, ref.Partition, ref.Offset, ref.Offset+1, func(e Entry) error {
		found = &e
		return nil
	})
	if err != nil {
		return Entry{}, err
	}
	if found == nil || found.Offset != ref.Offset {
		return Entry{}, fmt.Errorf("%w at %s/%s", ErrNotFound, r.topic, ref)
	}
	return *found, nil
}
