// Package kafkax holds what every orderflow Kafka client shares: the sarama
// configuration matching the broker version, a readiness check and topic
// creation.
package kafkax

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// Topic names of the order domain.
const (
	TopicInternal    = "orders.internal.v1"
	TopicInternalDLQ = "orders.internal.dlq.v1"
	TopicExternal    = "orders.external.v1"
)

// NewConfig returns the sarama configuration every client starts from.
// The protocol version must not exceed the broker's (Kafka 4.x removed the
// pre-2.1 protocol versions, and sarama picks request versions from this).
// 4.1 is the oldest broker we run: the local one is 4.3, docker-compose 4.1.
func NewConfig(clientID string) *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = clientID
	c.Version = sarama.V4_1_0_0
	c.Net.DialTimeout = 5 * time.Second
	c.Metadata.Retry.Max = 3
	c.Metadata.Retry.Backoff = 250 * time.Millisecond
	return c
}

// Ping asks the cluster for its metadata: a real protocol round trip.
func Ping(ctx context.Context, brokers []string) error {
	cfg := NewConfig("orderflow-ping")
	cfg.Metadata.Retry.Max = 0
	done := make(chan error, 1)
	go func() {
		client, err := sarama.NewClient(brokers, cfg)
		if err != nil {
			done <- err
			return
		}
		defer client.Close()
		if err := client.RefreshMetadata(); err != nil {
			done <- err
			return
		}
		if len(client.Brokers()) == 0 {
			done <- errors.New("metadata lists no brokers")
			return
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("kafka metadata request: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafka metadata request: %w", ctx.Err())
	}
}

// CreateTopics creates each topic that does not exist yet with the given
// number of partitions and replication factor 1 (one broker locally).
// Existing topics are left as they are.
func CreateTopics(brokers []string, partitions int32, replication int16, names ...string) error {
	admin, err := sarama.NewClusterAdmin(brokers, NewConfig("orderflow-admin"))
	if err != nil {
		return fmt.Errorf("connecting to kafka: %w", err)
	}
	defer admin.Close()
	for _, name := range names {
		err := admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: replication}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("creating topic %s: %w", name, err)
		}
	}
	// The controller has the topics; wait until the broker's metadata lists
	// them too, so that whoever starts next finds them.
	deadline := time.Now().Add(15 * time.Second)
	for {
		listed, err := admin.ListTopics()
		missing := ""
		for _, name := range names {
			if _, ok := listed[name]; !ok {
				missing = name
			}
		}
		if err == nil && missing == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s created but not listed after 15 s (%v)", missing, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// DeleteTopics removes topics; tests use it to clean up.
func DeleteTopics(brokers []string, names ...string) error {
	admin, err := sarama.NewClusterAdmin(brokers, NewConfig("orderflow-admin"))
	if err != nil {
		return fmt.Errorf("connecting to kafka: %w", err)
	}
	defer admin.Close()
	var errs []error
	for _, name := range names {
		if err := admin.DeleteTopic(name); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			errs = append(errs, fmt.Errorf("deleting topic %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
