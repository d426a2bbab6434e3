package eventstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/orderflow/orderflow/services/order-projector/internal/failure"
	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	"github.com/orderflow/orderflow/shared/observability"
	"github.com/orderflow/orderflow/shared/projection"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// script is a projector whose answers a test writes: it is called with the
// call's number (from 1) and the batch's order numbers.
type script struct {
	answer func(call int, orders []int64) error
	calls  int
	// applied are the order numbers of the successful calls.
	applied []int64
}

func (s *script) Project(_ context.Context, events []*eventsv1.OrderEvent) (projection.Result, error) {
	s.calls++
	orders := make([]int64, len(events))
	for i, e := range events {
		orders[i] = e.GetOrderNo()
	}
	if err := s.answer(s.calls, orders); err != nil {
		return projection.Result{}, err
	}
	s.applied = append(s.applied, orders...)
	return projection.Result{Projected: len(orders)}, nil
}

// dlqRecorder keeps the dead letters; its first failures calls fail.
type dlqRecorder struct {
	failures int
	letters  []DeadLetter
}

func (d *dlqRecorder) DeadLetter(_ *sarama.ConsumerMessage, dl DeadLetter) error {
	if d.failures > 0 {
		d.failures--
		return fmt.Errorf("sending to the dead-letter topic: %w", sarama.ErrOutOfBrokers)
	}
	d.letters = append(d.letters, dl)
	return nil
}

func event(t *testing.T, orderNo int64, eventType string) *sarama.ConsumerMessage {
	t.Helper()
	value, err := proto.Marshal(&eventsv1.OrderEvent{EventId: fmt.Sprint("e-", orderNo), EventType: eventType, OrderNo: orderNo, OrderVersion: 1})
	if err != nil {
		t.Fatal(err)
	}
	return &sarama.ConsumerMessage{Topic: "t", Offset: orderNo, Value: value}
}

var (
	shardDown   = &shard.UnavailableError{Shard: "shard-1", Err: errors.New("connection refused")}
	mongoHung   = failure.In(failure.MongoDB, context.DeadlineExceeded)
	brokenOrder = errors.New("order 2: history time: bad")
)

// The lane's decisions for each kind of failure, with the attempts and
// dead letters each costs.
func TestLaneHandlesEachKindOfFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		batch       []int64 // order numbers, each an OrderPlaced event
		extra       []*sarama.ConsumerMessage
		answer      func(call int, orders []int64) error
		dlqFailures int
		wantApplied []int64
		wantLetters map[int64]failure.Reason // by order number (0: undecodable)
		wantWaits   map[failure.Dependency]float64
		wantFailed  float64
	}{
		{name: "an outage is waited out", batch: []int64{1, 2, 3},
			answer: func(call int, _ []int64) error {
				if call <= 6 {
					return fmt.Errorf("reading orders: %w", shardDown)
				}
				return nil
			},
			wantApplied: []int64{1, 2, 3}, wantWaits: map[failure.Dependency]float64{failure.Shard: 6}},
		{name: "a hung store is waited out", batch: []int64{1, 2},
			answer: func(call int, _ []int64) error {
				if call <= 4 {
					return fmt.Errorf("writing documents: %w", mongoHung)
				}
				return nil
			},
			wantApplied: []int64{1, 2}, wantWaits: map[failure.Dependency]float64{failure.MongoDB: 4}},
		{name: "a conflict is retried without an attempt", batch: []int64{1},
			answer: func(call int, _ []int64) error {
				if call <= 2 {
					return fmt.Errorf("%w: 1 documents", projection.ErrConflict)
				}
				return nil
			},
			wantApplied: []int64{1}},
		{name: "a failing event is dead-lettered after its attempts, the rest applied", batch: []int64{1, 2, 3},
			answer: func(_ int, orders []int64) error {
				if slices.Contains(orders, 2) {
					return brokenOrder
				}
				return nil
			},
			wantApplied: []int64{1, 3}, wantLetters: map[int64]failure.Reason{2: failure.RetriesExhausted}, wantFailed: 3 + 3},
		{name: "an outage during the one-by-one fallback spends no attempts", batch: []int64{1, 2},
			answer: func(call int, orders []int64) error {
				switch {
				case len(orders) > 1:
					return brokenOrder // the whole batch: 3 attempts
				case call <= 6:
					return shardDown // the first event alone (calls 4 to 6): waited out
				}
				return nil
			},
			wantApplied: []int64{1, 2}, wantWaits: map[failure.Dependency]float64{failure.Shard: 3}, wantFailed: 3},
		{name: "an invalid order is dead-lettered at once, the rest applied", batch: []int64{1, 2, 3},
			answer: func(_ int, orders []int64) error {
				if slices.Contains(orders, 2) {
					return fmt.Errorf("validating orders: %w", errors.Join(&projection.InvalidOrderError{OrderNo: 2, Reason: "no items"}))
				}
				return nil
			},
			wantApplied: []int64{1, 3}, wantLetters: map[int64]failure.Reason{2: failure.InvalidOrder}},
		{name: "undecodable and unknown events are dead-lettered at once", batch: []int64{1},
			extra:       []*sarama.ConsumerMessage{{Value: []byte("not a protobuf \xff\xfe")}, event(t, 9, "OrderEaten"), event(t, -1, "OrderPlaced")},
			answer:      func(int, []int64) error { return nil },
			wantApplied: []int64{1}, wantLetters: map[int64]failure.Reason{0: failure.Undecodable, 9: failure.UnknownEventType, -1: failure.InvalidOrderNo}},
		{name: "a dead-letter topic that is down is waited for", batch: []int64{1},
			extra: []*sarama.ConsumerMessage{event(t, 9, "OrderEaten")}, dlqFailures: 3,
			answer:      func(int, []int64) error { return nil },
			wantApplied: []int64{1}, wantLetters: map[int64]failure.Reason{9: failure.UnknownEventType},
			wantWaits: map[failure.Dependency]float64{failure.Kafka: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := &script{answer: tt.answer}
			dlq := &dlqRecorder{failures: tt.dlqFailures}
			m := NewMetrics(prometheus.NewRegistry())
			h := newHandler(t, p, dlq, HandlerConfig{BatchSize: 10, Linger: time.Millisecond, MaxAttempts: 3, RetryBase: time.Millisecond,
				OutageWaitMin: time.Millisecond, OutageWaitMax: 4 * time.Millisecond}, m, slog.New(slog.NewTextHandler(io.Discard, nil)), testTracing(t))
			var msgs []*sarama.ConsumerMessage
			for _, no := range tt.batch {
				msgs = append(msgs, event(t, no, "OrderPlaced"))
			}
			msgs = append(msgs, tt.extra...)
			if err := h.newLane().apply(context.Background(), msgs); err != nil {
				t.Fatal(err)
			}
			slices.Sort(p.applied)
			if !slices.Equal(p.applied, tt.wantApplied) {
				t.Errorf("applied orders %v, want %v", p.applied, tt.wantApplied)
			}
			letters := map[int64]failure.Reason{}
			for _, dl := range dlq.letters {
				letters[dl.OrderNo] = dl.Reason
			}
			if len(letters) != len(tt.wantLetters) || len(dlq.letters) != len(tt.wantLetters) {
				t.Errorf("dead letters %+v, want %v", dlq.letters, tt.wantLetters)
			}
			for no, reason := range tt.wantLetters {
				if letters[no] != reason {
					t.Errorf("order %d dead-lettered as %q, want %q", no, letters[no], reason)
				}
				if got := testutil.ToFloat64(m.deadLetters.WithLabelValues(string(reason))); got < 1 {
					t.Errorf("dead letters with reason %s counted %v", reason, got)
				}
			}
			for _, dep := range []failure.Dependency{failure.Shard, failure.MongoDB, failure.Kafka} {
				if got := testutil.ToFloat64(m.outageWaits.WithLabelValues(string(dep))); got != tt.wantWaits[dep] {
					t.Errorf("%s outage waits %v, want %v", dep, got, tt.wantWaits[dep])
				}
				if got := testutil.ToFloat64(m.up.WithLabelValues(string(dep))); got != 1 {
					t.Errorf("%s up %v after the lane succeeded, want 1", dep, got)
				}
			}
			if got := testutil.ToFloat64(m.failures); got != tt.wantFailed {
				t.Errorf("%v attempts spent, want %v", got, tt.wantFailed)
			}
		})
	}
}

// The outage waits grow from the first wait to the cap and stay there.
func TestOutageWaitsGrowToTheCap(t *testing.T) {
	t.Parallel()
	h := newHandler(t, &script{}, &dlqRecorder{}, HandlerConfig{BatchSize: 1, Linger: time.Millisecond, MaxAttempts: 1, RetryBase: time.Millisecond,
		OutageWaitMin: 200 * time.Millisecond, OutageWaitMax: 5 * time.Second},
		NewMetrics(prometheus.NewRegistry()), slog.New(slog.NewTextHandler(io.Discard, nil)), testTracing(t))
	l := h.newLane()
	var waits []time.Duration
	for range 12 {
		waits = append(waits, min(l.outage.NextBackOff(), h.cfg.OutageWaitMax))
	}
	if waits[0] < 160*time.Millisecond || waits[0] > 240*time.Millisecond {
		t.Errorf("first wait %v, want 200 ms ± 20 %%", waits[0])
	}
	for i, w := range waits[1:] {
		if w > 5*time.Second || (i < 3 && w <= waits[i]*5/4) {
			t.Errorf("waits %v: wait %d is not growing or passes the cap", waits, i+1)
		}
	}
	if last := waits[len(waits)-1]; last < 4*time.Second {
		t.Errorf("waits %v never reach the 5 s cap", waits)
	}
}

// newHandler is NewHandler for a configuration the test knows is valid.
func newHandler(t *testing.T, p Projector, dlq DeadLetters, cfg HandlerConfig, m *Metrics, logger *slog.Logger, tracing *observability.Tracing) *Handler {
	t.Helper()
	h, err := NewHandler(p, dlq, cfg, m, logger, tracing)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHandlerConfigValidate(t *testing.T) {
	t.Parallel()
	valid := HandlerConfig{BatchSize: 10, Linger: time.Millisecond, MaxAttempts: 3, RetryBase: time.Millisecond,
		OutageWaitMin: time.Millisecond, OutageWaitMax: time.Second}
	tests := []struct {
		name    string
		change  func(*HandlerConfig)
		wantErr bool
	}{
		{name: "valid, lanes defaulted", change: func(*HandlerConfig) {}},
		{name: "zero batch size", change: func(c *HandlerConfig) { c.BatchSize = 0 }, wantErr: true},
		{name: "negative lanes", change: func(c *HandlerConfig) { c.Lanes = -1 }, wantErr: true},
		{name: "zero attempts", change: func(c *HandlerConfig) { c.MaxAttempts = 0 }, wantErr: true},
		{name: "zero linger", change: func(c *HandlerConfig) { c.Linger = 0 }, wantErr: true},
		{name: "zero retry base", change: func(c *HandlerConfig) { c.RetryBase = 0 }, wantErr: true},
		{name: "outage max below min", change: func(c *HandlerConfig) { c.OutageWaitMax = c.OutageWaitMin / 2 }, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid
			tc.change(&cfg)
			h, err := NewHandler(&script{}, &dlqRecorder{}, cfg, NewMetrics(prometheus.NewRegistry()),
				slog.New(slog.NewTextHandler(io.Discard, nil)), testTracing(t))
			if (err != nil) != tc.wantErr {
				t.Fatalf("NewHandler error = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && h.cfg.Lanes != 1 {
				t.Errorf("lanes = %d, want the default 1", h.cfg.Lanes)
			}
		})
	}
}

// fakeSession is the part of a consumer group session a lane uses: its
// context, and offsets marked (ignored here).
type fakeSession struct {
	sarama.ConsumerGroupSession
	ctx context.Context
}

func (s fakeSession) Context() context.Context                  { return s.ctx }
func (fakeSession) MarkMessage(*sarama.ConsumerMessage, string) {}
func (fakeSession) MarkOffset(string, int32, int64, string)     {}

// The up gauge is 0 while any lane waits for the dependency, and back at 1
// once every waiting lane succeeded or ended: a session that ends during a
// Kafka outage (its rebalance is part of the outage) must not leave the
// gauge at 0 after Kafka answers again.
func TestDependencyUpFollowsTheLanesThatWait(t *testing.T) {
	t.Parallel()
	kafkaDown := failure.In(failure.Kafka, sarama.ErrOutOfBrokers)
	p := &script{answer: func(int, []int64) error { return kafkaDown }}
	m := NewMetrics(prometheus.NewRegistry())
	h := newHandler(t, p, &dlqRecorder{}, HandlerConfig{BatchSize: 1, Linger: time.Millisecond, MaxAttempts: 3, RetryBase: time.Millisecond,
		OutageWaitMin: time.Millisecond, OutageWaitMax: 2 * time.Millisecond}, m, slog.New(slog.NewTextHandler(io.Discard, nil)), testTracing(t))
	up := func() float64 { return testutil.ToFloat64(m.up.WithLabelValues(string(failure.Kafka))) }

	// A second lane that waited and recovered does not hide the first.
	other := h.newLane()
	if other.waitOutage(context.Background(), failure.Kafka, kafkaDown); up() != 0 {
		t.Fatalf("up %v while a lane waits for kafka, want 0", up())
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := make(chan claimed, 1)
	in <- claimed{msg: event(t, 1, "OrderPlaced"), lag: m.lag.WithLabelValues("t", "0")}
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.newLane().run(fakeSession{ctx: ctx}, in)
	}()
	testinfra.Eventually(t, 10*time.Second, func() bool {
		return testutil.ToFloat64(m.outageWaits.WithLabelValues(string(failure.Kafka))) >= 3
	}, "the running lane never waited for kafka")
	if other.recovered(); up() != 0 {
		t.Fatalf("up %v after one of two waiting lanes recovered, want 0", up())
	}
	cancel() // the session ends while the lane waits
	<-done
	if got := up(); got != 1 {
		t.Errorf("up %v after the waiting lane ended, want 1", got)
	}
}
