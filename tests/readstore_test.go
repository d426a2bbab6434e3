package tests

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orderflow/orderflow/shared/orderdoc"
	"github.com/orderflow/orderflow/shared/projection"
	"github.com/orderflow/orderflow/shared/projection/docstore"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// The local read store keeps every write it acknowledged when it is killed
// (SIGKILL, nothing flushed on the way out) right after the write, as a
// crash under load would: each round writes a batch the way the projector
// does, kills the server at once and reads the batch back after a restart.
// With H2's stock background commit (about once a second) the first round
// already loses its batch.
func TestReadStoreKeepsAcknowledgedWritesWhenKilled(t *testing.T) {
	testinfra.Integration(t)
	t.Parallel()
	ctx := context.Background()
	server := testinfra.StartMongoWire(t)
	const rounds, perRound = 3, 200
	for round := range rounds {
		client := server.Connect()
		store := docstore.NewStore(client.Database("durability"))
		if err := orderdoc.EnsureIndexes(ctx, store.Collection()); err != nil {
			t.Fatal(err)
		}
		w := projection.Write{Read: map[int64]int32{}}
		for i := range perRound {
			no := int64(round*perRound + i + 1)
			w.Docs = append(w.Docs, orderdoc.Document{OrderNo: no, UserID: "u-1", ShopID: "s-1", Status: "PLACED",
				Version: 1, ExternalVersion: 1, PlacedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC(), ProjectedAt: time.Now().UTC()})
		}
		if conflicts, err := store.Write(ctx, w); err != nil || conflicts != 0 {
			t.Fatalf("round %d: write: %d conflicts, %v", round, conflicts, err)
		}
		server.Kill()
		server.Start()

		client = server.Connect()
		n, err := client.Database("durability").Collection(orderdoc.Collection).CountDocuments(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		if want := int64((round + 1) * perRound); n != want {
			t.Fatalf("after kill %d: %d documents, want %d: acknowledged writes were lost", round+1, n, want)
		}
	}
}
