package service_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orderflow/orderflow/services/order-projector/internal/service"
	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/orderdoc"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// env is one test's slice of the infrastructure: shards, topics, database.
type env struct {
	t        *testing.T
	topo     shard.Topology
	internal string
	external string
	dlq      string
	db       *mongo.Database
	group    string
}

func newEnv(t *testing.T, topo shard.Topology) *env {
	return &env{t: t, topo: topo, internal: testinfra.KafkaTopic(t, 4), external: testinfra.KafkaTopic(t, 4),
		dlq: testinfra.KafkaTopic(t, 1), db: testinfra.MongoDatabase(t), group: testinfra.UniqueName(t, "g")}
}

func (e *env) config() service.Config {
	return service.Config{
		HTTPAddr: "127.0.0.1:0", LogLevel: "info", Shard: testinfra.TestPool(),
		KafkaBrokers: strings.Join(testinfra.KafkaBrokers(), ","), Group: e.group, Topic: e.internal,
		ExternalTopic: e.external, DLQTopic: e.dlq, MongoURI: testinfra.MongoURI(), MongoDatabase: e.db.Name(),
		BatchSize: 100, Lanes: 2, BatchLinger: 5 * time.Millisecond, MaxAttempts: 3, RetryBase: 10 * time.Millisecond,
		OutageWaitMin: 50 * time.Millisecond, OutageWaitMax: 400 * time.Millisecond,
		MongoTimeout: 2 * time.Second, KafkaTimeout: 2 * time.Second, ShutdownTimeout: 5 * time.Second, OrderRetention: 720 * time.Hour,
	}
}

// start runs a projector until the test ends (or until stop is called).
func (e *env) start(cfg service.Config) (svc *service.Service, stop func()) {
	e.t.Helper()
	return testinfra.RunService(e.t, func(ctx context.Context) (*service.Service, error) {
		return service.New(ctx, cfg, e.topo, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	})
}

var statuses = []string{"PLACED", "ACCEPTED", "DELIVERING", "DELIVERED"}

// order is an order the test writes on its shard, as the command side would.
type order struct {
	no        int64
	version   int32
	cancelled bool
}

func (o order) status(v int32) string {
	if o.cancelled && v == o.version {
		return "CANCELLED"
	}
	return statuses[v-1]
}

// writeOrder stores the order at its version on the shard its number routes to.
func (e *env) writeOrder(o order) {
	e.t.Helper()
	loc, err := e.topo.Route(o.no)
	if err != nil {
		e.t.Fatal(err)
	}
	dsn, _ := e.topo.DSN(loc.Shard)
	db := testinfra.DB(e.t, dsn)
	placed := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(o.no) * time.Second)
	reason := any(nil)
	if o.cancelled {
		reason = "changed my mind"
	}
	if _, err := db.Exec(`INSERT INTO orders (order_no, request_id, request_hash, user_id, shop_id, status, total_amount,
		delivery_address, cancel_reason, version, placed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 19500, 'Seoul', ?, ?, ?, ?)
		ON DUPLICATE KEY UPDATE status = VALUES(status), version = VALUES(version), cancel_reason = VALUES(cancel_reason), updated_at = VALUES(updated_at)`,
		o.no, "req-"+strconv.FormatInt(o.no, 10), make([]byte, 32), fmt.Sprintf("user-%d", o.no%3), "shop-1", o.status(o.version),
		reason, o.version, placed, placed.Add(time.Duration(o.version)*time.Minute)); err != nil {
		e.t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT IGNORE INTO order_items (order_no, line_no, menu_id, name, quantity, unit_price)
		VALUES (?, 1, 'm-1', 'Bibimbap', 2, 9000), (?, 2, 'm-2', 'Tea', 1, 1500)`, o.no, o.no); err != nil {
		e.t.Fatal(err)
	}
	for v := int32(1); v <= o.version; v++ {
		if _, err := db.Exec(`INSERT IGNORE INTO order_status_history (order_no, version, status, changed_at) VALUES (?, ?, ?, ?)`,
			o.no, v, o.status(v), placed.Add(time.Duration(v)*time.Minute)); err != nil {
			e.t.Fatal(err)
		}
	}
}

// exec runs a statement on the shard of order no, with no as its argument.
func (e *env) exec(query string, no int64) {
	e.t.Helper()
	loc, err := e.topo.Route(no)
	if err != nil {
		e.t.Fatal(err)
	}
	dsn, _ := e.topo.DSN(loc.Shard)
	if _, err := testinfra.DB(e.t, dsn).Exec(query, no); err != nil {
		e.t.Fatal(err)
	}
}

// placedOrders writes orders 1..n at version 1 and returns their events.
func (e *env) placedOrders(n int64) []*sarama.ProducerMessage {
	e.t.Helper()
	msgs := make([]*sarama.ProducerMessage, 0, n)
	for no := int64(1); no <= n; no++ {
		o := order{no: no, version: 1}
		e.writeOrder(o)
		msgs = append(msgs, internalEvent(o, 1))
	}
	return msgs
}

var eventTypes = map[string]string{"PLACED": "OrderPlaced", "ACCEPTED": "OrderAccepted", "DELIVERING": "OrderDelivering",
	"DELIVERED": "OrderDelivered", "CANCELLED": "OrderCancelled"}

// internalEvent is the relay's message for version v of o.
func internalEvent(o order, v int32) *sarama.ProducerMessage {
	value, _ := proto.Marshal(&eventsv1.OrderEvent{EventId: uuid.NewString(), EventType: eventTypes[o.status(v)], OrderNo: o.no,
		OrderVersion: v, OccurredAt: timestamppb.Now()})
	return &sarama.ProducerMessage{Key: sarama.StringEncoder(strconv.FormatInt(o.no, 10)), Value: sarama.ByteEncoder(value)}
}

func (e *env) produce(msgs ...*sarama.ProducerMessage) {
	e.t.Helper()
	cfg := kafkax.NewConfig("projector-test")
	cfg.Producer.Return.Successes = true
	p, err := sarama.NewSyncProducer(testinfra.KafkaBrokers(), cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	defer p.Close()
	for _, m := range msgs {
		m.Topic = e.internal
	}
	if err := p.SendMessages(msgs); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) doc(no int64) (orderdoc.Document, bool) {
	var d orderdoc.Document
	err := e.db.Collection(orderdoc.Collection).FindOne(context.Background(), bson.D{{Key: "_id", Value: no}}).Decode(&d)
	return d, err == nil
}

// collector reads a topic from the start.
type collector struct {
	mu   sync.Mutex
	msgs []*sarama.ConsumerMessage
}

func (e *env) collect(topic string) *collector {
	e.t.Helper()
	cfg := kafkax.NewConfig("projector-test")
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	group, err := sarama.NewConsumerGroup(testinfra.KafkaBrokers(), testinfra.UniqueName(e.t, "c"), cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	c := &collector{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			_ = group.Consume(ctx, []string{topic}, c)
		}
	}()
	e.t.Cleanup(func() { cancel(); <-done; _ = group.Close() })
	return c
}

func (c *collector) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (c *collector) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (c *collector) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		c.mu.Lock()
		c.msgs = append(c.msgs, m)
		c.mu.Unlock()
		s.MarkMessage(m, "")
	}
	return nil
}

func (c *collector) all() []*sarama.ConsumerMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*sarama.ConsumerMessage(nil), c.msgs...)
}
