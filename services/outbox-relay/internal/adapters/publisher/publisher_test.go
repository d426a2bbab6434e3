package publisher

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/orderflow/orderflow/shared/outbox"
	"github.com/orderflow/orderflow/shared/testinfra"
)

func message(id int64) outbox.Message {
	return outbox.Message{ID: id, EventID: uuid.NewString(), EventType: "OrderPlaced", OrderNo: id, OrderVersion: 1,
		OccurredAt: time.Now().UTC()}
}

// The relay's checks only look. Each shard's loop asks Transient about its
// failures and Healthy about the cluster; when those dropped the shared
// producer, one shard's check closed the producer another shard had just
// rebuilt, and every shard paid for a new producer (and a new idempotent
// producer id) per check. The producer a send uses must survive every check
// and keep sending, without a rebuild.
func TestChecksLeaveTheSharedProducerAlone(t *testing.T) {
	t.Parallel()
	topic := testinfra.KafkaTopic(t, 1)
	p := NewPublisher(testinfra.KafkaBrokers(), topic, "relay-test", testTracing(t))
	t.Cleanup(func() { _ = p.Close() })
	if errs := p.Publish(context.Background(), []outbox.Message{message(1)}); errs[0] != nil {
		t.Fatalf("first publish: %v", errs[0])
	}
	if n := p.built.Load(); n != 1 {
		t.Fatalf("%d producers built for the first publish, want 1", n)
	}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	checks := []struct {
		name  string
		check func() bool // returns what the check answered, for a sanity assertion
		want  bool
	}{
		{name: "transient: leader moving", check: func() bool { return p.Transient(sarama.ErrNotLeaderForPartition) }, want: true},
		{name: "transient: broker unreachable", check: func() bool {
			return p.Transient(&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")})
		}, want: true},
		{name: "transient: deadline", check: func() bool { return p.Transient(context.DeadlineExceeded) }, want: true},
		{name: "not transient: the row", check: func() bool { return p.Transient(sarama.ErrMessageSizeTooLarge) }, want: false},
		{name: "health check that fails", check: func() bool { return p.Healthy(cancelled) == nil }, want: false},
		{name: "health check that passes", check: func() bool { return p.Healthy(context.Background()) == nil }, want: true},
	}
	for i, c := range checks {
		p.mu.RLock()
		before := p.producer
		p.mu.RUnlock()
		if got := c.check(); got != c.want {
			t.Errorf("%s: answered %v, want %v", c.name, got, c.want)
		}
		p.mu.RLock()
		after := p.producer
		p.mu.RUnlock()
		if after == nil || after != before {
			t.Errorf("%s: the check dropped the producer that sends use", c.name)
		}
		if errs := p.Publish(context.Background(), []outbox.Message{message(int64(i + 2))}); errs[0] != nil {
			t.Errorf("%s: publishing after the check: %v", c.name, errs[0])
		}
	}
	if n := p.built.Load(); n != 1 {
		t.Errorf("%d producers built over %d checks, want the first one only", n, len(checks))
	}
}

// A send the cluster failed drops the producer it used, once: the next send
// builds a fresh one. A second failure reported on the same, already
// replaced producer leaves the new one alone.
func TestFailedSendDropsOnlyItsOwnProducer(t *testing.T) {
	t.Parallel()
	topic := testinfra.KafkaTopic(t, 1)
	p := NewPublisher(testinfra.KafkaBrokers(), topic, "relay-test", testTracing(t))
	t.Cleanup(func() { _ = p.Close() })
	if errs := p.Publish(context.Background(), []outbox.Message{message(1)}); errs[0] != nil {
		t.Fatalf("first publish: %v", errs[0])
	}
	p.mu.RLock()
	first := p.producer
	p.mu.RUnlock()

	p.drop(first) // what Publish does after the cluster failed a send on first
	if errs := p.Publish(context.Background(), []outbox.Message{message(2)}); errs[0] != nil {
		t.Fatalf("publish after the drop: %v", errs[0])
	}
	p.mu.RLock()
	second := p.producer
	p.mu.RUnlock()
	if second == nil || second == first || p.built.Load() != 2 {
		t.Fatalf("after a drop the next send must build a fresh producer (built %d)", p.built.Load())
	}

	p.drop(first) // another shard's late report about the old producer
	p.mu.RLock()
	current := p.producer
	p.mu.RUnlock()
	if current != second {
		t.Errorf("a late report about a replaced producer closed the new one")
	}
	if errs := p.Publish(context.Background(), []outbox.Message{message(3)}); errs[0] != nil || p.built.Load() != 2 {
		t.Errorf("publish on the surviving producer: %v (built %d)", errs[0], p.built.Load())
	}
}

// A broker that accepts connections but answers nothing (a frozen process:
// the kernel still completes the handshake) fails a publish within seconds,
// as a transient failure, instead of holding the relay's shard loops for
// sarama's 30 s read timeout per try.
func TestFrozenBrokerIsNoticedWithinSeconds(t *testing.T) {
	t.Parallel()
	frozen, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = frozen.Close() })
	go func() {
		var held []net.Conn // accepted and never answered
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for {
			c, err := frozen.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	p := NewPublisher([]string{frozen.Addr().String()}, "orders.internal.v1", "relay-test", testTracing(t))
	t.Cleanup(func() { _ = p.Close() })

	const within = 10 * time.Second
	start := time.Now()
	errs := p.Publish(context.Background(), []outbox.Message{message(1), message(2)})
	elapsed := time.Since(start)
	for i, err := range errs {
		if err == nil || !p.Transient(err) {
			t.Errorf("row %d: %v, want a transient failure", i, err)
		}
	}
	if elapsed > within {
		t.Errorf("publishing to a frozen broker took %s, want under %s", elapsed, within)
	}
	t.Logf("frozen broker noticed after %s", elapsed.Round(100*time.Millisecond))
}
