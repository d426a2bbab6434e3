package verify_test

import (
	"context"
	"database/sql"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orderflow/orderflow/services/orderctl/internal/verify"
	"github.com/orderflow/orderflow/shared/orderdoc"
	"github.com/orderflow/orderflow/shared/testinfra"
)

var placed = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func putOrder(t *testing.T, db *sql.DB, no int64, version int32, at time.Time) {
	t.Helper()
	if _, err := db.Exec(`INSERT INTO orders (order_no, request_id, request_hash, user_id, shop_id, status, total_amount,
		delivery_address, version, placed_at, updated_at) VALUES (?, ?, ?, 'u', 's', 'PLACED', 100, 'Seoul', ?, ?, ?)`,
		no, uuid.NewString(), make([]byte, 32), version, at, at); err != nil {
		t.Fatal(err)
	}
	for v := int32(1); v <= version; v++ {
		putOutbox(t, db, no, v, "PUBLISHED", "")
	}
}

func putOutbox(t *testing.T, db *sql.DB, no int64, v int32, status, lastError string) {
	t.Helper()
	if _, err := db.Exec(`INSERT INTO outbox (event_id, event_type, order_no, order_version, occurred_at, status, last_error)
		VALUES (?, 'OrderPlaced', ?, ?, ?, ?, NULLIF(?, ''))`, uuid.NewString(), no, v, placed, status, lastError); err != nil {
		t.Fatal(err)
	}
}

func putDoc(t *testing.T, coll *mongo.Collection, no int64, version int32) {
	t.Helper()
	if _, err := coll.InsertOne(context.Background(), orderdoc.Document{OrderNo: no, Version: version, Status: "PLACED", PlacedAt: placed}); err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 2)
	pools := testinfra.OpenShards(t, topo)
	mdb := testinfra.MongoDatabase(t)
	docs := mdb.Collection(orderdoc.Collection)
	// With two shards in one epoch from 1, even numbers live on shard-0.
	s0, s1 := testinfra.DB(t, topo.Shards[0].DSN), testinfra.DB(t, topo.Shards[1].DSN)
	for no := int64(1); no <= 25; no++ {
		db := s0
		if no%2 == 1 {
			db = s1
		}
		putOrder(t, db, no, 2, placed)
		putDoc(t, docs, no, 2)
	}

	clean, err := verify.New(pools, mdb, 7, 10).Run(context.Background(), verify.Window{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !clean.OK() || clean.Orders != 25 {
		t.Fatalf("clean run: %+v, want 25 orders and no mismatch", clean)
	}

	// Plant one of each mismatch.
	putOrder(t, s0, 101, 1, placed) // odd: belongs on shard-1
	putDoc(t, docs, 101, 1)
	putOrder(t, s0, 103, 1, placed) // on both shards
	putOrder(t, s1, 103, 1, placed)
	putDoc(t, docs, 103, 1)
	putOutbox(t, s0, 2, 3, "PENDING", "")
	putOutbox(t, s1, 3, 3, "FAILED", "broker said no")
	putOrder(t, s0, 200, 1, placed) // no document
	putOrder(t, s0, 202, 3, placed) // document behind
	putDoc(t, docs, 202, 2)
	recent := placed.Add(48 * time.Hour)
	putOrder(t, s0, 300, 1, recent) // a recent order without a document

	var progressed int
	rep, err := verify.New(pools, mdb, 7, 100).Run(context.Background(), verify.Window{}, func(string, int) { progressed++ })
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		verify.KindWrongShard: 1, verify.KindDuplicate: 1, verify.KindPending: 1, verify.KindFailed: 1,
		verify.KindMissingDocument: 2, verify.KindStaleDocument: 1,
	}
	for kind, n := range want {
		if rep.Counts[kind] != n {
			t.Errorf("%s: %d, want %d (report %+v)", kind, rep.Counts[kind], n, rep.Counts)
		}
	}
	if len(rep.Counts) != len(want) || rep.OK() {
		t.Errorf("unexpected kinds: %v", rep.Counts)
	}
	if progressed < 4 {
		t.Errorf("progress reported %d times for pages of 7, want one per page", progressed)
	}
	found := map[int64]bool{}
	for _, m := range rep.First {
		found[m.OrderNo] = true
		if m.Kind == verify.KindFailed && m.Detail == "" {
			t.Errorf("a FAILED event without its error: %+v", m)
		}
	}
	for _, no := range []int64{101, 103, 2, 3, 200, 202, 300} {
		if !found[no] {
			t.Errorf("order %d not among the offenders %v", no, rep.First)
		}
	}
	// The orders a re-projection repairs: missing and stale documents only.
	repairable := slices.Sorted(slices.Values(rep.Repairable))
	if !slices.Equal(repairable, []int64{200, 202, 300}) {
		t.Errorf("repairable orders %v, want [200 202 300]", repairable)
	}

	// A window sees only the orders placed in it.
	windowed, err := verify.New(pools, mdb, 100, 10).Run(context.Background(), verify.Window{Since: placed.Add(24 * time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if windowed.Orders != 1 || windowed.Counts[verify.KindMissingDocument] != 1 || len(windowed.Counts) != 1 {
		t.Errorf("window after the old orders: %+v, want only order 300", windowed)
	}
}
