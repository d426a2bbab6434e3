package relay

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/orderflow/orderflow/shared/outbox"
	"github.com/orderflow/orderflow/shared/testinfra"
)

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	base, maxDelay := time.Second, time.Minute
	tests := []struct {
		name    string
		attempt int32
		// step is the un-jittered wait; every draw lies in [step/2, step].
		step time.Duration
	}{
		{name: "first retry", attempt: 1, step: time.Second},
		{name: "doubles each attempt", attempt: 3, step: 4 * time.Second},
		{name: "just below the cap", attempt: 6, step: 32 * time.Second},
		{name: "capped at max", attempt: 10, step: time.Minute},
		{name: "capped at max for huge attempts", attempt: 1000, step: time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lo, hi := tc.step, time.Duration(0)
			for range 2000 {
				got := RetryDelay(tc.attempt, base, maxDelay)
				if got < tc.step/2 || got > tc.step {
					t.Fatalf("RetryDelay(%d) = %s, want within [%s, %s]", tc.attempt, got, tc.step/2, tc.step)
				}
				lo, hi = min(lo, got), max(hi, got)
			}
			// The jitter spreads the waits over the range, not onto one value.
			if spread := hi - lo; spread < tc.step/4 {
				t.Errorf("RetryDelay(%d) drew %s..%s over 2000 calls, want a spread of at least %s", tc.attempt, lo, hi, tc.step/4)
			}
		})
	}
}

// fakeLease records what the relay did to the rows (unit tests of the
// relay's decisions only; the SQL is tested against MariaDB elsewhere).
type fakeLease struct {
	rows      []outbox.Message
	published []int64
	failures  []outbox.Failure
}

func (f *fakeLease) Claim(context.Context, int, time.Time) ([]outbox.Message, error) {
	return f.rows, nil
}
func (f *fakeLease) MarkPublished(_ context.Context, ids []int64, _ time.Time) error {
	f.published = append(f.published, ids...)
	return nil
}
func (f *fakeLease) RecordFailures(_ context.Context, fs []outbox.Failure) error {
	f.failures = append(f.failures, fs...)
	return nil
}
func (f *fakeLease) DeletePublished(context.Context, time.Time, int) (int64, error) { return 0, nil }
func (f *fakeLease) Outbox() Outbox                                                 { return f }
func (f *fakeLease) Heartbeat(context.Context) error                                { return nil }
func (f *fakeLease) Release()                                                       {}

var errTransient = errors.New("leader not available")

type fakePublisher struct{ results map[int64]error }

func (p *fakePublisher) Publish(_ context.Context, msgs []outbox.Message) []error {
	out := make([]error, len(msgs))
	for i, m := range msgs {
		out[i] = p.results[m.ID]
	}
	return out
}
func (p *fakePublisher) Transient(err error) bool      { return errors.Is(err, errTransient) }
func (p *fakePublisher) Healthy(context.Context) error { return nil }

func TestPublishBatchDecisions(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	rows := []outbox.Message{{ID: 1, Attempts: 0}, {ID: 2, Attempts: 0}, {ID: 3, Attempts: 2}}
	tests := []struct {
		name          string
		results       map[int64]error
		wantPublished []int64
		wantFailures  map[int64]bool // id -> parked as FAILED
		wantWait      bool
	}{
		{name: "all acknowledged", results: map[int64]error{}, wantPublished: []int64{1, 2, 3}},
		{name: "a refused row spends an attempt", results: map[int64]error{2: errors.New("record too large")},
			wantPublished: []int64{1, 3}, wantFailures: map[int64]bool{2: false}},
		{name: "the last attempt parks the row", results: map[int64]error{3: errors.New("record too large")},
			wantPublished: []int64{1, 2}, wantFailures: map[int64]bool{3: true}},
		{name: "a transient failure spends nothing and waits", results: map[int64]error{1: errTransient, 2: errTransient},
			wantPublished: []int64{3}, wantWait: true},
		{name: "both kinds at once", results: map[int64]error{1: errTransient, 3: errors.New("bad")},
			wantPublished: []int64{2}, wantFailures: map[int64]bool{3: true}, wantWait: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lease := &fakeLease{rows: rows}
			r, err := New(func() []string { return []string{"s"} }, nil, &fakePublisher{results: tc.results}, Config{
				BatchSize: 10, IdleWait: time.Millisecond, AcquireInterval: time.Millisecond, HeartbeatInterval: time.Second,
				MaxAttempts: 3, RetryBase: time.Second, RetryMax: time.Minute, OutageMaxWait: time.Second,
				OutboxRetention: time.Hour, CleanupInterval: time.Minute, CleanupBatch: 10,
			}, NewMetrics(prometheus.NewRegistry()), slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return now })
			if err != nil {
				t.Fatal(err)
			}
			_, transient, err := r.publishBatch(context.Background(), "s", lease)
			wait := transient != nil
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(lease.published, tc.wantPublished) {
				t.Errorf("published %v, want %v", lease.published, tc.wantPublished)
			}
			if wait != tc.wantWait {
				t.Errorf("wait = %v, want %v", wait, tc.wantWait)
			}
			if len(lease.failures) != len(tc.wantFailures) {
				t.Fatalf("failures %+v, want %v", lease.failures, tc.wantFailures)
			}
			for _, f := range lease.failures {
				parked, ok := tc.wantFailures[f.ID]
				row := rows[f.ID-1]
				switch {
				case !ok:
					t.Errorf("row %d recorded as failed", f.ID)
				case f.Failed != parked || f.Attempts != row.Attempts+1 || f.Error == "":
					t.Errorf("row %d: %+v, want parked=%v attempts=%d", f.ID, f, parked, row.Attempts+1)
				case !parked && (f.NextAttemptAt.Before(now) || f.NextAttemptAt.After(now.Add(time.Minute))):
					t.Errorf("row %d: next attempt at %s", f.ID, f.NextAttemptAt)
				}
			}
		})
	}
}

// switchPublisher fails every row as transient while down is set.
type switchPublisher struct{ down atomic.Bool }

func (p *switchPublisher) Publish(_ context.Context, msgs []outbox.Message) []error {
	out := make([]error, len(msgs))
	if p.down.Load() {
		for i := range out {
			out[i] = errTransient
		}
	}
	return out
}
func (p *switchPublisher) Transient(err error) bool      { return errors.Is(err, errTransient) }
func (p *switchPublisher) Healthy(context.Context) error { return nil }

// orderflow_outbox_kafka_waiting is 1 from the first transient failure to
// the next success, and 0 again once the shard is given up: an instance
// that lost a shard during an outage does not keep reporting it.
func TestKafkaWaitingFollowsTheOutage(t *testing.T) {
	t.Parallel()
	pub := &switchPublisher{}
	pub.down.Store(true)
	m := NewMetrics(prometheus.NewRegistry())
	r, err := New(func() []string { return []string{"s"} }, nil, pub, Config{
		BatchSize: 10, IdleWait: time.Millisecond, AcquireInterval: time.Millisecond, HeartbeatInterval: time.Hour,
		MaxAttempts: 3, RetryBase: time.Second, RetryMax: time.Minute, OutageMaxWait: 20 * time.Millisecond,
		OutboxRetention: time.Hour, CleanupInterval: time.Hour, CleanupBatch: 10,
	}, m, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	m.initShard("s")
	waiting := func() float64 { return testutil.ToFloat64(m.kafkaWait.WithLabelValues("s")) }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.work(ctx, "s", &fakeLease{rows: []outbox.Message{{ID: 1}}}) }()
	until := func(what string, want float64) {
		t.Helper()
		testinfra.Eventually(t, 10*time.Second, func() bool { return waiting() == want }, "%s: kafka_waiting never became %v", what, want)
	}
	until("kafka refuses the rows", 1)
	pub.down.Store(false)
	until("kafka takes them again", 0)
	pub.down.Store(true)
	until("kafka refuses them again", 1)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := waiting(); got != 0 {
		t.Errorf("kafka_waiting %v after the shard was given up, want 0", got)
	}
}

// claimClock is a lease that hands out batches of a given size and
// records when each claim came.
type claimClock struct {
	fakeLease
	size int
	mu   sync.Mutex
	at   []time.Time
}

func (c *claimClock) Claim(context.Context, int, time.Time) ([]outbox.Message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = append(c.at, time.Now())
	rows := make([]outbox.Message, c.size)
	for i := range rows {
		rows[i] = outbox.Message{ID: int64(len(c.at)*1000 + i)}
	}
	return rows, nil
}
func (c *claimClock) MarkPublished(context.Context, []int64, time.Time) error { return nil }
func (c *claimClock) Outbox() Outbox                                          { return c }

func (c *claimClock) claims() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.at)
}

// After a batch smaller than the batch size the relay lingers, so that the
// next batch gathers the rows written meanwhile; after a full batch (a
// backlog) it claims again at once.
func TestRelayLingersAfterAPartialBatch(t *testing.T) {
	t.Parallel()
	const linger = 80 * time.Millisecond
	for _, tc := range []struct {
		name      string
		batchRows int
		lingers   bool
	}{
		{name: "partial batch", batchRows: 3, lingers: true},
		{name: "full batch", batchRows: 10, lingers: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := New(func() []string { return []string{"s"} }, nil, &fakePublisher{}, Config{
				BatchSize: 10, IdleWait: time.Hour, Linger: linger, AcquireInterval: time.Millisecond, HeartbeatInterval: time.Hour,
				MaxAttempts: 3, RetryBase: time.Second, RetryMax: time.Minute, OutageMaxWait: time.Second,
				OutboxRetention: time.Hour, CleanupInterval: time.Hour, CleanupBatch: 10,
			}, NewMetrics(prometheus.NewRegistry()), slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
			if err != nil {
				t.Fatal(err)
			}
			lease := &claimClock{size: tc.batchRows}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.work(ctx, "s", lease) }()
			const claims = 4
			testinfra.Eventually(t, 10*time.Second, func() bool { return len(lease.claims()) >= claims }, "the relay claimed fewer than %d batches", claims)
			cancel()
			<-done
			at := lease.claims()
			var shortest time.Duration = time.Hour
			for i := 1; i < len(at); i++ {
				shortest = min(shortest, at[i].Sub(at[i-1]))
			}
			if tc.lingers && shortest < linger {
				t.Fatalf("claims %s apart after partial batches, want at least the linger %s", shortest, linger)
			}
			if !tc.lingers && shortest >= linger {
				t.Fatalf("claims at least %s apart after full batches, want the next one at once", shortest)
			}
		})
	}
}

// cleanupFails is a lease whose cleanup never succeeds (say, a delete that
// outlives the statement timeout) and whose batches always go through.
type cleanupFails struct {
	claimClock
	deletes atomic.Int32
}

func (c *cleanupFails) DeletePublished(context.Context, time.Time, int) (int64, error) {
	c.deletes.Add(1)
	return 0, errors.New("shard s unavailable: no answer within the deadline (800ms): deleting published rows")
}
func (c *cleanupFails) Outbox() Outbox { return c }

// Deleting old published rows is housekeeping: when it fails the relay
// keeps the shard and goes on publishing, counts the failure and tries the
// cleanup again an interval later. (It once gave the shard up, so a slow
// cleanup stopped every publish.)
func TestFailedCleanupDoesNotStopPublishing(t *testing.T) {
	t.Parallel()
	m := NewMetrics(prometheus.NewRegistry())
	r, err := New(func() []string { return []string{"s"} }, nil, &fakePublisher{}, Config{
		BatchSize: 10, IdleWait: time.Millisecond, Linger: time.Millisecond, AcquireInterval: time.Millisecond, HeartbeatInterval: time.Hour,
		MaxAttempts: 3, RetryBase: time.Second, RetryMax: time.Minute, OutageMaxWait: time.Second,
		OutboxRetention: time.Hour, CleanupInterval: 5 * time.Millisecond, CleanupBatch: 10,
	}, m, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	lease := &cleanupFails{claimClock: claimClock{size: 3}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := time.Now()
	go func() { done <- r.work(ctx, "s", lease) }()
	testinfra.Eventually(t, 10*time.Second, func() bool {
		select {
		case err := <-done:
			t.Fatalf("the relay gave the shard up after a failed cleanup: %v", err)
		default:
		}
		return lease.deletes.Load() >= 3 && len(lease.claims()) >= 10
	}, "the relay did not go on publishing and trying the cleanup again")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Once per interval, not in a loop: a cleanup at the start and one per
	// 5 ms since, and one more at most for the timing of the last.
	if deletes, most := lease.deletes.Load(), int32(time.Since(started)/(5*time.Millisecond))+2; deletes > most {
		t.Errorf("%d cleanups in %s, want at most %d (one per interval)", deletes, time.Since(started), most)
	}
	if got, want := testutil.ToFloat64(m.cleanupErrs.WithLabelValues("s")), float64(lease.deletes.Load()); got != want {
		t.Errorf("orderflow_outbox_cleanup_failures_total = %v, want %v (one per failed cleanup)", got, want)
	}
}
