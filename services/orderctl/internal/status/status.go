// Package status answers the on-call engineer's first question — does
// anything in orderflow need attention? — in one bounded pass over the
// shards' outboxes, the consumer groups' lag, the dead letters and, when it
// answers, Prometheus (freshness and firing alerts). Every check runs at
// the same time under its own deadline, so a hung shard or broker costs the
// report its timeout, never more.
package status

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/orderflow/orderflow/shared/outbox"
	"github.com/orderflow/orderflow/shared/shard"
)

// Defaults of Config.
const (
	DefaultTimeout       = 3 * time.Second
	DefaultPingTimeout   = time.Second
	DefaultMaxPendingAge = 30 * time.Second
	DefaultMaxLag        = 1000
)

// Config says what to check and when a value needs attention.
type Config struct {
	// Pools are the shards of the topology.
	Pools *shard.Pools
	// Brokers are the Kafka bootstrap servers.
	Brokers []string
	// Groups are the consumer groups whose lag is checked over Topics.
	Groups []string
	// Topics are the topics the groups consume.
	Topics []string
	// DLQTopic is the projector's dead-letter topic.
	DLQTopic string
	// MongoURI and MongoDatabase locate the read side, where worked-off
	// dead letters are marked.
	MongoURI, MongoDatabase string
	// PrometheusURL is Prometheus's base URL; "" skips that part.
	PrometheusURL string
	// MaxPendingAge is the oldest PENDING outbox row's age above which a
	// shard needs attention (default 30s, the OutboxBacklogStale alert's).
	MaxPendingAge time.Duration
	// MaxLag is the consumer lag (messages, summed over a topic's
	// partitions) above which a group needs attention (default 1000, the
	// ConsumerLagGrowing alert's).
	MaxLag int64
	// Timeout bounds each check (default 3s).
	Timeout time.Duration
	// PingTimeout bounds a shard's ping (default 1s).
	PingTimeout time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.MaxPendingAge == 0 {
		c.MaxPendingAge = DefaultMaxPendingAge
	}
	if c.MaxLag == 0 {
		c.MaxLag = DefaultMaxLag
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.PingTimeout == 0 {
		c.PingTimeout = DefaultPingTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate rejects a configuration that cannot be checked.
func (c Config) Validate() error {
	switch {
	case c.Pools == nil:
		return errors.New("status: the shards are required")
	case len(c.Brokers) == 0:
		return errors.New("status: the Kafka brokers are required")
	case len(c.Groups) > 0 && len(c.Topics) == 0:
		return errors.New("status: the consumer groups need at least one topic")
	case c.DLQTopic == "":
		return errors.New("status: the dead-letter topic is required")
	case c.MongoURI == "" || c.MongoDatabase == "":
		return errors.New("status: the read side's MongoDB URI and database are required")
	case c.MaxPendingAge < 0, c.MaxLag < 0, c.Timeout < 0, c.PingTimeout < 0:
		return errors.New("status: thresholds and timeouts must not be negative")
	}
	return nil
}

// Checker produces reports.
type Checker struct {
	cfg   Config
	store *outbox.Store
}

// New returns a checker over cfg.
func New(cfg Config) (*Checker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Checker{cfg: cfg, store: outbox.NewStore(cfg.Pools, cfg.Now)}, nil
}

// Check runs every check at once and returns the report once each has
// answered or reached its deadline.
func (c *Checker) Check(ctx context.Context) Report {
	r := Report{CheckedAt: c.cfg.Now().UTC(), Thresholds: Thresholds{
		MaxPendingAgeSeconds: c.cfg.MaxPendingAge.Seconds(), MaxLag: c.cfg.MaxLag}}
	var wg sync.WaitGroup
	wg.Go(func() { r.Shards = c.shards(ctx) })
	wg.Go(func() { r.ConsumerGroups = c.consumerGroups(ctx) })
	wg.Go(func() { r.DLQ = c.deadLetters(ctx) })
	wg.Go(func() { r.Prometheus = c.prometheus(ctx) })
	wg.Wait()
	r.Problems = c.problems(r)
	r.Healthy = len(r.Problems) == 0
	return r
}

// bounded runs fn under a deadline of d and returns at the deadline even
// if fn does not (a client library blocked in a dial or a handshake that
// ignores the context): fn then finishes, and releases what it opened, on
// its own.
func bounded[T any](ctx context.Context, d time.Duration, fn func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := fn(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("no answer within %s: %w", d, ctx.Err())
	}
}
