package tests

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orderflow/orderflow/migrations"
	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// TestInfrastructureIsReal proves that the integration tests talk to real
// servers over the network: MariaDB through go-sql-driver/mysql, Kafka through
// IBM/sarama (with a consumer group), MongoDB through mongo-driver v2.
func TestInfrastructureIsReal(t *testing.T) {
	t.Parallel()

	t.Run("every mysql shard stores and returns a row", func(t *testing.T) {
		t.Parallel()
		topo := testinfra.Shards(t, len(testinfra.MySQLAddrs()))
		latest, err := migrations.Latest()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range topo.Shards {
			db := testinfra.DB(t, s.DSN)
			ctx := context.Background()
			var version int64
			if err := db.QueryRowContext(ctx, "SELECT MAX(version_id) FROM "+migrations.VersionTable).Scan(&version); err != nil {
				t.Fatalf("%s: reading schema version: %v", s.Name, err)
			}
			if version != latest {
				t.Errorf("%s: schema version %d, want %d", s.Name, version, latest)
			}
			var server string
			if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&server); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx,
				"INSERT INTO order_items (order_no, line_no, menu_id, name, quantity, unit_price) VALUES (?, 1, ?, 'probe', 1, 1000)",
				42, s.Name); err != nil {
				t.Fatalf("%s: insert: %v", s.Name, err)
			}
			var menuID string
			if err := db.QueryRowContext(ctx, "SELECT menu_id FROM order_items WHERE order_no = 42").Scan(&menuID); err != nil {
				t.Fatalf("%s: select: %v", s.Name, err)
			}
			if menuID != s.Name {
				t.Errorf("%s: read back %q", s.Name, menuID)
			}
			t.Logf("%s: %s", s.Name, server)
		}
	})

	t.Run("kafka produces and a consumer group consumes", func(t *testing.T) {
		t.Parallel()
		topic := testinfra.KafkaTopic(t, 3)
		brokers := testinfra.KafkaBrokers()

		cfg := kafkax.NewConfig("infra-test")
		cfg.Producer.Return.Successes = true
		cfg.Producer.RequiredAcks = sarama.WaitForAll
		producer, err := sarama.NewSyncProducer(brokers, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer producer.Close()
		want := map[string]bool{}
		for i := range 10 {
			v := fmt.Sprintf("value-%d", i)
			want[v] = true
			if _, _, err := producer.SendMessage(&sarama.ProducerMessage{
				Topic: topic, Key: sarama.StringEncoder(fmt.Sprint(i)), Value: sarama.StringEncoder(v),
			}); err != nil {
				t.Fatalf("produce: %v", err)
			}
		}

		ccfg := kafkax.NewConfig("infra-test")
		ccfg.Consumer.Offsets.Initial = sarama.OffsetOldest
		group, err := sarama.NewConsumerGroup(brokers, testinfra.UniqueName(t, "g"), ccfg)
		if err != nil {
			t.Fatal(err)
		}
		defer group.Close()
		h := &collector{seen: map[string]bool{}}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		go func() {
			for ctx.Err() == nil {
				if err := group.Consume(ctx, []string{topic}, h); err != nil {
					return
				}
			}
		}()
		testinfra.Eventually(t, 60*time.Second, func() bool { return h.count() == len(want) },
			"consumed %d of %d records", h.count(), len(want))
		for v := range want {
			if !h.has(v) {
				t.Errorf("record %q not consumed", v)
			}
		}
	})

	t.Run("mongodb inserts, upserts and finds", func(t *testing.T) {
		t.Parallel()
		db := testinfra.MongoDatabase(t)
		ctx := context.Background()
		coll := db.Collection("probe")
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "status", Value: "PLACED"}}); err != nil {
			t.Fatalf("insert: %v", err)
		}
		if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 2}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: "ACCEPTED"}}}}, options.UpdateOne().SetUpsert(true)); err != nil {
			t.Fatalf("upsert: %v", err)
		}
		var got struct {
			Status string `bson:"status"`
		}
		if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: 2}}).Decode(&got); err != nil {
			t.Fatalf("find: %v", err)
		}
		if got.Status != "ACCEPTED" {
			t.Errorf("upserted document has status %q", got.Status)
		}
		n, err := coll.CountDocuments(ctx, bson.D{})
		if err != nil || n != 2 {
			t.Errorf("CountDocuments = %d, %v; want 2", n, err)
		}
	})
}

type collector struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (c *collector) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (c *collector) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (c *collector) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		c.mu.Lock()
		c.seen[string(msg.Value)] = true
		c.mu.Unlock()
		s.MarkMessage(msg, "")
	}
	return nil
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

func (c *collector) has(v string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[v]
}
