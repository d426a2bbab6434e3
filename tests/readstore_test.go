package tests

import (
	"context"
	"slices"
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
// crash under load would: each round inserts a batch and moves the previous
// round's documents to version 2 the way the projector does (compare-and-set
// updates), kills the server at once and reads everything back after a
// restart, which replays the journal and compacts it, so the later rounds
// also start from a compacted journal. The indexes must survive too: the
// projector's compare-and-set relies on the unique one over id and version.
// With H2's stock background commit (about once a second) the first round
// already lost its batch.
func TestReadStoreKeepsAcknowledgedWritesWhenKilled(t *testing.T) {
	testinfra.Integration(t)
	t.Parallel()
	ctx := context.Background()
	server := testinfra.StartMongoWire(t)
	const rounds, perRound = 3, 200
	wantIndexes := []string{orderdoc.IndexIDVersion, orderdoc.IndexUserPlaced, orderdoc.IndexShopPlaced}
	doc := func(no int64, version int32) orderdoc.Document {
		now := time.Now().UTC()
		return orderdoc.Document{OrderNo: no, UserID: "u-1", ShopID: "s-1", Status: "PLACED",
			Version: version, ExternalVersion: version, PlacedAt: now, UpdatedAt: now, ProjectedAt: now}
	}
	for round := range rounds {
		client := server.Connect()
		store := docstore.NewStore(client.Database("durability"))
		if err := orderdoc.EnsureIndexes(ctx, store.Collection()); err != nil {
			t.Fatal(err)
		}
		w := projection.Write{Read: map[int64]int32{}}
		for i := range perRound {
			w.Docs = append(w.Docs, doc(int64(round*perRound+i+1), 1))
			if round > 0 {
				prev := int64((round-1)*perRound + i + 1)
				w.Docs = append(w.Docs, doc(prev, 2))
				w.Read[prev] = 1
			}
		}
		if conflicts, err := store.Write(ctx, w); err != nil || conflicts != 0 {
			t.Fatalf("round %d: write: %d conflicts, %v", round, conflicts, err)
		}
		server.Kill()
		server.Start()

		coll := server.Connect().Database("durability").Collection(orderdoc.Collection)
		n, err := coll.CountDocuments(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		if want := int64((round + 1) * perRound); n != want {
			t.Fatalf("after kill %d: %d documents, want %d: acknowledged writes were lost", round+1, n, want)
		}
		updated, err := coll.CountDocuments(ctx, bson.D{{Key: "version", Value: 2}})
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(round * perRound); updated != want {
			t.Fatalf("after kill %d: %d documents at version 2, want %d: acknowledged updates were lost", round+1, updated, want)
		}
		specs, err := coll.Indexes().ListSpecifications(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var have []string
		for _, s := range specs {
			have = append(have, s.Name)
		}
		for _, name := range wantIndexes {
			if !slices.Contains(have, name) {
				t.Fatalf("after kill %d: index %s is gone (have %v)", round+1, name, have)
			}
		}
	}
}
