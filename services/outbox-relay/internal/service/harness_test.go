package service_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/orderflow/orderflow/services/outbox-relay/internal/service"
	"github.com/orderflow/orderflow/shared/auth"
	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

const token = "test-admin-token-0123456789abcdef"

func testConfig(topic string, brokers []string) service.Config {
	return service.Config{
		RelayID: "relay-test", KafkaBrokers: joinBrokers(brokers), Topic: topic, LogLevel: "info", Shard: testinfra.TestPool(),
		BatchSize: 200, IdleWait: 10 * time.Millisecond, AcquireInterval: 200 * time.Millisecond, HeartbeatInterval: time.Second,
		MaxAttempts: 10, RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, OutageMaxWait: 500 * time.Millisecond,
		OutboxRetention: 168 * time.Hour, CleanupInterval: time.Minute, CleanupBatch: 1000, BacklogInterval: 200 * time.Millisecond,
		AdminGRPCAddr: "127.0.0.1:0", AdminHTTPAddr: "127.0.0.1:0", AdminToken: token,
		RequestTimeout: 10 * time.Second, ShutdownTimeout: 5 * time.Second,
		// The admin API takes the shared token here; operator tokens are
		// checked by the auth tests.
		Auth: auth.Settings{Disabled: true},
	}
}

func joinBrokers(b []string) string {
	out := ""
	for i, s := range b {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}

// startRelay runs a relay in this process until the test ends.
func startRelay(t *testing.T, cfg service.Config, topo shard.Topology) *service.Service {
	t.Helper()
	svc, _ := testinfra.RunService(t, func(ctx context.Context) (*service.Service, error) {
		return service.New(ctx, cfg, topo, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	})
	return svc
}

// event is a row the tests write to an outbox, as the command side would.
type event struct {
	id      string
	orderNo int64
	version int32
	typ     string
}

var eventTypes = []string{"OrderPlaced", "OrderAccepted", "OrderDelivering", "OrderDelivered"}

// writeEvents inserts, for each order, versions 1..versions in order, each in
// its own transaction, and returns the events by id.
func writeEvents(t *testing.T, dsn string, firstOrder int64, orders, versions int) map[string]event {
	t.Helper()
	db := testinfra.DB(t, dsn)
	out := map[string]event{}
	for v := 1; v <= versions; v++ {
		for o := range orders {
			e := event{id: uuid.NewString(), orderNo: firstOrder + int64(o), version: int32(v), typ: eventTypes[(v-1)%len(eventTypes)]}
			insertEvent(t, db, e)
			out[e.id] = e
		}
	}
	return out
}

func insertEvent(t *testing.T, db *sql.DB, e event) {
	t.Helper()
	if _, err := db.Exec(`INSERT INTO outbox (event_id, event_type, order_no, order_version, occurred_at, traceparent)
		VALUES (?, ?, ?, ?, ?, '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')`,
		e.id, e.typ, e.orderNo, e.version, time.Now().UTC()); err != nil {
		t.Fatalf("inserting outbox row: %v", err)
	}
}

// received is what a consumer saw of one event.
type received struct {
	event
	partition int32
	offset    int64
	headers   map[string]string
}

// consumer reads a topic from the start with a fresh consumer group.
type consumer struct {
	mu   sync.Mutex
	seen []received
}

func consume(t *testing.T, brokers []string, topic string) *consumer {
	t.Helper()
	cfg := kafkax.NewConfig("relay-test")
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	group, err := sarama.NewConsumerGroup(brokers, testinfra.UniqueName(t, "g"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &consumer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := group.Consume(ctx, []string{topic}, c); err != nil {
				// A session that ends early (a rebalance) is simply joined
				// again, after a short pause.
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = group.Close()
	})
	return c
}

func (c *consumer) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (c *consumer) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (c *consumer) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		var ev eventsv1.OrderEvent
		if err := proto.Unmarshal(msg.Value, &ev); err != nil {
			return fmt.Errorf("undecodable message at %d/%d: %w", msg.Partition, msg.Offset, err)
		}
		headers := map[string]string{}
		for _, h := range msg.Headers {
			headers[string(h.Key)] = string(h.Value)
		}
		r := received{event: event{id: ev.GetEventId(), orderNo: ev.GetOrderNo(), version: ev.GetOrderVersion(), typ: ev.GetEventType()},
			partition: msg.Partition, offset: msg.Offset, headers: headers}
		if key := string(msg.Key); key != strconv.FormatInt(ev.GetOrderNo(), 10) {
			return fmt.Errorf("message key %q for order %d", key, ev.GetOrderNo())
		}
		c.mu.Lock()
		c.seen = append(c.seen, r)
		c.mu.Unlock()
		s.MarkMessage(msg, "")
	}
	return nil
}

func (c *consumer) snapshot() []received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]received(nil), c.seen...)
}

// distinct counts the distinct event ids received.
func (c *consumer) distinct() int {
	ids := map[string]bool{}
	for _, r := range c.snapshot() {
		ids[r.id] = true
	}
	return len(ids)
}

func countStatus(t *testing.T, topo shard.Topology, status string) int {
	t.Helper()
	n := 0
	for _, s := range topo.Shards {
		var c int
		if err := testinfra.DB(t, s.DSN).QueryRow("SELECT COUNT(*) FROM outbox WHERE status = ?", status).Scan(&c); err != nil {
			t.Fatal(err)
		}
		n += c
	}
	return n
}

func createTopic(brokers []string, topic string) error {
	return kafkax.CreateTopics(brokers, 3, 1, topic)
}
