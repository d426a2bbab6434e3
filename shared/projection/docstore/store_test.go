package docstore_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orderflow/orderflow/shared/orderdoc"
	"github.com/orderflow/orderflow/shared/projection"
	"github.com/orderflow/orderflow/shared/projection/docstore"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// One bulk write carries inserts, compare-and-set updates and external-only
// marks; a stale compare-and-set or an insert of an existing document is a
// conflict, and externalVersion never goes down.
func TestWriteIsOneCompareAndSetBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := docstore.NewStore(testinfra.MongoDatabase(t))
	if err := orderdoc.EnsureIndexes(ctx, s.Collection()); err != nil {
		t.Fatal(err)
	}
	doc := func(no int64, v, ext int32) orderdoc.Document {
		return orderdoc.Document{OrderNo: no, Status: "PLACED", Version: v, ExternalVersion: ext}
	}
	// 1 and 2 exist at version 2; 3 does not.
	if n, err := s.Write(ctx, projection.Write{Docs: []orderdoc.Document{doc(1, 2, 2), doc(2, 2, 1)}}); err != nil || n != 0 {
		t.Fatalf("seeding: %d conflicts, %v", n, err)
	}

	tests := []struct {
		name          string
		write         projection.Write
		wantConflicts int
		want          map[int64][2]int32 // version, externalVersion
	}{
		{name: "update read at the current version and insert a new one",
			write:         projection.Write{Docs: []orderdoc.Document{doc(1, 3, 3), doc(3, 1, 1)}, Read: map[int64]int32{1: 2}},
			wantConflicts: 0, want: map[int64][2]int32{1: {3, 3}, 3: {1, 1}}},
		{name: "update read at an older version conflicts",
			write:         projection.Write{Docs: []orderdoc.Document{doc(1, 4, 4)}, Read: map[int64]int32{1: 2}},
			wantConflicts: 1, want: map[int64][2]int32{1: {3, 3}}},
		{name: "insert of an existing document conflicts",
			write:         projection.Write{Docs: []orderdoc.Document{doc(3, 2, 2)}},
			wantConflicts: 1, want: map[int64][2]int32{3: {1, 1}}},
		{name: "external-only mark raises, never lowers",
			write:         projection.Write{ExternalOnly: map[int64]int32{2: 2, 1: 1}},
			wantConflicts: 0, want: map[int64][2]int32{2: {2, 2}, 1: {3, 3}}},
	}
	for _, tt := range tests { // sequential: each builds on the one before
		n, err := s.Write(ctx, tt.write)
		if err != nil || n != tt.wantConflicts {
			t.Errorf("%s: %d conflicts (%v), want %d", tt.name, n, err, tt.wantConflicts)
		}
		for no, want := range tt.want {
			var got orderdoc.Document
			if err := s.Collection().FindOne(ctx, bson.D{{Key: "_id", Value: no}}).Decode(&got); err != nil {
				t.Fatalf("%s: reading %d: %v", tt.name, no, err)
			}
			if got.Version != want[0] || got.ExternalVersion != want[1] {
				t.Errorf("%s: order %d at version %d, externalVersion %d; want %d, %d", tt.name, no, got.Version, got.ExternalVersion, want[0], want[1])
			}
		}
	}
}
