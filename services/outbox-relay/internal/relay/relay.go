// Package relay moves outbox rows of every shard to Kafka. Each shard is
// worked by exactly one relay instance at a time (whoever holds its lease);
// rows are marked PUBLISHED only after Kafka acknowledged them, failed rows are
// retried with exponential back-off and jitter and parked as FAILED after a
// number of attempts, and a Kafka outage is waited out without spending the
// rows' attempts.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/orderflow/orderflow/shared/observability"
	"github.com/orderflow/orderflow/shared/outbox"
	"github.com/orderflow/orderflow/shared/wait"
)

// Lease is ownership of one shard.
type Lease interface {
	// Outbox is the shard's outbox, worked on the lease's connection, so
	// that the rows are only touched while the lease holds.
	Outbox() Outbox
	// Heartbeat checks that the lease still holds.
	Heartbeat(ctx context.Context) error
	// Release gives the shard up.
	Release()
}

// Outbox is the relay's work on one shard's outbox (outbox.Publishing).
type Outbox interface {
	Claim(ctx context.Context, limit int, now time.Time) ([]outbox.Message, error)
	MarkPublished(ctx context.Context, ids []int64, at time.Time) error
	RecordFailures(ctx context.Context, failures []outbox.Failure) error
	DeletePublished(ctx context.Context, olderThan time.Time, limit int) (int64, error)
}

// Locker takes a shard's lease without waiting; ok is false when another
// relay holds it.
type Locker interface {
	Acquire(ctx context.Context, shard string) (lease Lease, ok bool, err error)
}

// Publisher sends rows to Kafka and reports, per row, nil once Kafka
// acknowledged it.
type Publisher interface {
	Publish(ctx context.Context, msgs []outbox.Message) []error
	// Transient tells a failure of the cluster (Kafka down, topic or leader
	// not available: wait, spend no attempt) from a failure of the row.
	Transient(err error) bool
	// Healthy tells whether the cluster answers at all (for the log).
	Healthy(ctx context.Context) error
}

// Config tunes the relay.
type Config struct {
	// BatchSize is the most rows claimed and published at once per shard.
	BatchSize int
	// IdleWait is the pause after a poll that found nothing to publish.
	IdleWait time.Duration
	// Linger is the pause after a batch smaller than BatchSize, so that
	// the next one gathers the rows written meanwhile: a relay that polled
	// again at once took one to three rows a batch at peak, and every
	// batch costs the shard a locking read, an update and a commit and
	// Kafka a produce request, whatever its size. A full batch (a backlog)
	// is followed at once. Zero polls again at once.
	Linger time.Duration
	// AcquireInterval is how often a shard owned by nobody (or by another
	// relay) is tried.
	AcquireInterval time.Duration
	// HeartbeatInterval is how often an owned shard's lease is checked.
	HeartbeatInterval time.Duration
	// MaxAttempts is how many failed publishes park a row as FAILED.
	MaxAttempts int32
	// RetryBase and RetryMax bound the per-row back-off.
	RetryBase, RetryMax time.Duration
	// OutageMaxWait is the step the waits grow to while Kafka cannot take
	// rows, or a shard cannot be reached. Each wait is drawn within ±50 %
	// of its step (backoff/v5's default randomization factor), so one wait
	// can be up to 1.5 × OutageMaxWait.
	OutageMaxWait time.Duration
	// OutboxRetention is how long PUBLISHED rows are kept; CleanupInterval
	// how often they are deleted, CleanupBatch rows per statement.
	OutboxRetention time.Duration
	CleanupInterval time.Duration
	CleanupBatch    int
}

// Validate checks the settings.
func (c Config) Validate() error {
	switch {
	case c.BatchSize < 1:
		return errors.New("batch size must be at least 1")
	case c.MaxAttempts < 1:
		return errors.New("max attempts must be at least 1")
	case c.Linger < 0:
		return errors.New("linger must not be negative")
	case c.IdleWait <= 0 || c.AcquireInterval <= 0 || c.HeartbeatInterval <= 0 || c.RetryBase <= 0 ||
		c.RetryMax < c.RetryBase || c.OutageMaxWait <= 0 || c.OutboxRetention <= 0 || c.CleanupInterval <= 0 || c.CleanupBatch < 1:
		return errors.New("intervals, retention and cleanup batch must be positive, and retry max at least retry base")
	}
	return nil
}

// Relay works the outbox of every shard it can take.
type Relay struct {
	shards  func() []string
	locker  Locker
	pub     Publisher
	cfg     Config
	metrics *Metrics
	logger  *slog.Logger
	now     func() time.Time
}

// New returns a relay over the shards that shards returns (the list grows
// when a shard is added; the relay picks new ones up).
func New(shards func() []string, locker Locker, pub Publisher, cfg Config, metrics *Metrics, logger *slog.Logger, now func() time.Time) (*Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("relay config: %w", err)
	}
	return &Relay{shards: shards, locker: locker, pub: pub, cfg: cfg, metrics: metrics, logger: logger, now: now}, nil
}

// Run works every shard until ctx ends, then finishes the batch in flight
// and releases the leases. Shards added meanwhile get a loop of their own.
func (r *Relay) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	started := map[string]bool{}
	for {
		for _, s := range r.shards() {
			if !started[s] {
				started[s] = true
				wg.Go(func() { r.runShard(ctx, s) })
			}
		}
		wait.Sleep(ctx, r.cfg.AcquireInterval)
		if ctx.Err() != nil {
			wg.Wait()
			return nil
		}
	}
}

// runShard takes the shard whenever nobody holds it and works it. A shard
// that cannot be reached (down, hung, its circuit breaker open) is tried
// again with exponential back-off, not every AcquireInterval: the step
// starts at AcquireInterval and grows 1.5× per failure to
// max(OutageMaxWait, AcquireInterval), each wait drawn within ±50 % of its
// step, so a shard that is gone costs a try every few seconds.
func (r *Relay) runShard(ctx context.Context, shard string) {
	log := r.logger.With(slog.String("shard", shard))
	unreachable := backoff.NewExponentialBackOff()
	unreachable.InitialInterval = r.cfg.AcquireInterval
	unreachable.MaxInterval = max(r.cfg.OutageMaxWait, r.cfg.AcquireInterval)
	for ctx.Err() == nil {
		pause := r.cfg.AcquireInterval
		lease, ok, err := r.locker.Acquire(ctx, shard)
		switch {
		case err != nil:
			log.WarnContext(ctx, "acquiring shard lease failed", slog.Any("error", err))
			pause = unreachable.NextBackOff()
		case ok:
			unreachable.Reset()
			log.InfoContext(ctx, "took over shard")
			r.metrics.owned.WithLabelValues(shard).Set(1)
			err := r.work(ctx, shard, lease)
			lease.Release()
			r.metrics.owned.WithLabelValues(shard).Set(0)
			if err != nil && ctx.Err() == nil {
				log.WarnContext(ctx, "gave up shard", slog.Any("error", err))
			}
		default:
			unreachable.Reset()
		}
		wait.Sleep(ctx, pause)
	}
}

// work publishes the shard's rows for as long as the lease holds. While
// Kafka cannot take rows it waits with exponential back-off between
// batches (the step starts at 100 ms and grows 1.5× per batch to
// OutageMaxWait, each wait drawn within ±50 % of its step, so up to
// 1.5 × OutageMaxWait), and checks the cluster once per outage, for the log.
func (r *Relay) work(ctx context.Context, shard string, lease Lease) error {
	lastBeat := r.now()
	lastCleanup := time.Time{}
	outage := backoff.NewExponentialBackOff()
	outage.InitialInterval = 100 * time.Millisecond
	outage.MaxInterval = r.cfg.OutageMaxWait
	inOutage := false
	// A shard given up during an outage is no longer this instance's to
	// wait for (the next owner reports its own waiting).
	defer r.metrics.kafkaWait.WithLabelValues(shard).Set(0)
	for {
		// ctx is checked only between batches: a batch in flight is
		// finished even when ctx ends, because publishBatch runs on
		// context.WithoutCancel(ctx). What bounds it then is the shard's
		// statement timeout and circuit breaker (every outbox statement goes
		// through shard.Pools.Call) and the producer's own timeouts.
		if ctx.Err() != nil {
			return nil
		}
		now := r.now()
		if now.Sub(lastBeat) >= r.cfg.HeartbeatInterval {
			if err := lease.Heartbeat(ctx); err != nil {
				return err
			}
			lastBeat = now
		}
		if now.Sub(lastCleanup) >= r.cfg.CleanupInterval {
			// Old rows are housekeeping: a cleanup that fails (a delete
			// past the statement timeout, on a pooled connection so that
			// the lease's survives it; a shard that just went away) is
			// tried again an interval later and never stops the
			// publishing. A shard that is really gone fails the batch
			// below, and that gives the shard up.
			if err := r.cleanup(ctx, shard, lease.Outbox()); err != nil && ctx.Err() == nil {
				r.metrics.cleanupErrs.WithLabelValues(shard).Inc()
				r.logger.WarnContext(ctx, "deleting old published rows failed; publishing goes on",
					slog.String("shard", shard), slog.Any("error", err))
			}
			lastCleanup = now
		}
		published, transient, err := r.publishBatch(context.WithoutCancel(ctx), shard, lease.Outbox())
		if err != nil {
			return err
		}
		switch {
		case transient != nil:
			if !inOutage {
				inOutage = true
				r.metrics.kafkaWait.WithLabelValues(shard).Set(1)
				r.logger.WarnContext(ctx, "kafka cannot take messages now; waiting without spending attempts",
					slog.String("shard", shard), slog.Any("error", transient), slog.Any("cluster", r.pub.Healthy(ctx)))
			}
			wait.Sleep(ctx, outage.NextBackOff())
			continue
		case inOutage:
			inOutage = false
			r.metrics.kafkaWait.WithLabelValues(shard).Set(0)
			r.logger.InfoContext(ctx, "kafka takes messages again", slog.String("shard", shard))
		}
		outage.Reset()
		switch {
		case published == 0:
			wait.Sleep(ctx, r.cfg.IdleWait)
		case published < r.cfg.BatchSize && r.cfg.Linger > 0:
			wait.Sleep(ctx, r.cfg.Linger)
		}
	}
}

// publishBatch claims, publishes and records one batch. It returns how many
// rows were published and, when Kafka could not take some for now, one of
// those failures.
func (r *Relay) publishBatch(ctx context.Context, shard string, box Outbox) (published int, transient, err error) {
	msgs, err := box.Claim(ctx, r.cfg.BatchSize, r.now())
	if err != nil || len(msgs) == 0 {
		return 0, nil, err
	}
	results := r.pub.Publish(ctx, msgs)
	ackedAt := r.now()
	var ok []int64
	var failed []int
	for i, err := range results {
		if err == nil {
			ok = append(ok, msgs[i].ID)
			r.metrics.commitToAck.WithLabelValues(shard).Observe(ackedAt.Sub(msgs[i].OccurredAt).Seconds())
		} else {
			failed = append(failed, i)
		}
	}
	if err := box.MarkPublished(ctx, ok, ackedAt); err != nil {
		// Kafka has them; they stay PENDING and are published again later
		// (at-least-once), never lost.
		return 0, nil, err
	}
	r.metrics.published.WithLabelValues(shard).Add(float64(len(ok)))
	if len(failed) == 0 {
		return len(ok), nil, nil
	}
	var rowFailed []int
	transientRows := 0
	for _, i := range failed {
		if r.pub.Transient(results[i]) {
			transientRows++
			if transient == nil {
				transient = results[i]
			}
		} else {
			rowFailed = append(rowFailed, i)
		}
	}
	if transientRows > 0 {
		r.metrics.failures.WithLabelValues(shard, "transient").Add(float64(transientRows))
	}
	if len(rowFailed) == 0 {
		return len(ok), transient, nil
	}
	failed = rowFailed
	failures := make([]outbox.Failure, len(failed))
	for j, i := range failed {
		m := msgs[i]
		attempts := m.Attempts + 1
		failures[j] = outbox.Failure{ID: m.ID, Attempts: attempts, Error: results[i].Error(),
			Failed: attempts >= r.cfg.MaxAttempts, NextAttemptAt: ackedAt.Add(RetryDelay(attempts, r.cfg.RetryBase, r.cfg.RetryMax))}
		if failures[j].Failed {
			// Logged in the row's trace (the command that wrote it).
			r.logger.ErrorContext(observability.WithTraceparent(ctx, m.Traceparent), "outbox row parked as FAILED", slog.String("shard", shard), slog.Int64("id", m.ID),
				slog.String("event_id", m.EventID), slog.Int("attempts", int(attempts)), slog.String("error", failures[j].Error))
		}
	}
	r.metrics.failures.WithLabelValues(shard, "row").Add(float64(len(failed)))
	return len(ok), transient, box.RecordFailures(ctx, failures)
}

func (r *Relay) cleanup(ctx context.Context, shard string, box Outbox) error {
	olderThan := r.now().Add(-r.cfg.OutboxRetention)
	for ctx.Err() == nil {
		n, err := box.DeletePublished(ctx, olderThan, r.cfg.CleanupBatch)
		if err != nil {
			return err
		}
		r.metrics.cleaned.WithLabelValues(shard).Add(float64(n))
		if n < int64(r.cfg.CleanupBatch) {
			return nil
		}
	}
	return nil
}

// RetryDelay is the wait before attempt+1: an exponential back-off from base,
// doubling per attempt and capped at max, with each wait drawn at random
// between half and the whole of it, so that rows that failed together do not
// retry together. backoff/v5 draws its waits around a centre, within a
// randomization factor of it: a centre of 3/4 of the step and a factor of
// 1/3 give exactly [step/2, step].
func RetryDelay(attempt int32, base, max time.Duration) time.Duration {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     base / 4 * 3,
		RandomizationFactor: 1.0 / 3,
		Multiplier:          2,
		MaxInterval:         max / 4 * 3,
	}
	// The row's attempts are kept on the row, not in b: replay the steps up
	// to this attempt. Past 64 doublings every step is the cap.
	d := b.NextBackOff()
	for i := int32(1); i < min(attempt, 64); i++ {
		d = b.NextBackOff()
	}
	return d
}
