package testinfra

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/mongox"
)

// KafkaTopic creates a fresh topic with the given number of partitions and
// deletes it when the test ends.
func KafkaTopic(t testing.TB, partitions int32) string {
	t.Helper()
	Integration(t)
	name := UniqueName(t, "t")
	brokers := KafkaBrokers()
	if err := kafkax.CreateTopics(brokers, partitions, 1, name); err != nil {
		t.Fatalf("testinfra: %v (is the infrastructure up? run scripts/infra up)", err)
	}
	t.Cleanup(func() { _ = kafkax.DeleteTopics(brokers, name) })
	return name
}

// MongoDatabase returns a fresh database and drops it when the test ends.
func MongoDatabase(t testing.TB) *mongo.Database {
	t.Helper()
	Integration(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := mongox.Connect(ctx, MongoURI())
	if err != nil {
		t.Fatalf("testinfra: %v (is the infrastructure up? run scripts/infra up)", err)
	}
	db := client.Database(UniqueName(t, "t"))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = db.Drop(ctx)
		_ = client.Disconnect(ctx)
	})
	return db
}
