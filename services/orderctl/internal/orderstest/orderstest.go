// Package orderstest seeds shards with orders for orderctl's integration
// tests: each order with one item and a status history up to its version,
// as the command side writes them.
package orderstest

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orderflow/orderflow/shared/orderdoc"
	"github.com/orderflow/orderflow/shared/orderenum"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// statusAt is the stored status of version v (1-4) of an order that only
// ever advanced: the v-th status in lifecycle order. The last status,
// CANCELLED, is not reached by advancing.
func statusAt(t testing.TB, v int32) string {
	t.Helper()
	names := orderenum.StatusNames()
	if v < 1 || int(v) >= len(names) {
		t.Fatalf("no order reaches version %d by advancing", v)
	}
	return names[v-1]
}

// Shards is a two-shard topology of fresh databases with a topology file.
type Shards struct {
	Topology shard.Topology
	File     string
	// DBs are the shards' databases; with one epoch from 1, even order
	// numbers live on DBs[0] and odd ones on DBs[1].
	DBs []*sql.DB
}

// NewShards creates two shards and writes their topology file.
func NewShards(t testing.TB) *Shards {
	t.Helper()
	topo := testinfra.Shards(t, 2)
	file := filepath.Join(t.TempDir(), "topology.json")
	if err := shard.WriteTopology(file, topo); err != nil {
		t.Fatal(err)
	}
	return &Shards{Topology: topo, File: file, DBs: []*sql.DB{testinfra.DB(t, topo.Shards[0].DSN), testinfra.DB(t, topo.Shards[1].DSN)}}
}

// Put writes order no at version (1-4) placed at placedAt on its shard.
func (s *Shards) Put(t testing.TB, no int64, version int32, placedAt time.Time) {
	t.Helper()
	db := s.DBs[no%2]
	placedAt = placedAt.UTC().Truncate(time.Microsecond)
	if _, err := db.Exec(`INSERT INTO orders (order_no, request_id, request_hash, user_id, shop_id, status, total_amount,
		delivery_address, version, placed_at, updated_at) VALUES (?, ?, REPEAT('x', 32), 'u-1', 's-1', ?, 18000, 'Seoul', ?, ?, ?)`,
		no, fmt.Sprintf("r-%d", no), statusAt(t, version), version, placedAt, placedAt.Add(time.Duration(version-1)*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO order_items (order_no, line_no, menu_id, name, quantity, unit_price) VALUES (?, 1, 'm-1', 'Bibimbap', 2, 9000)`, no); err != nil {
		t.Fatal(err)
	}
	for v := int32(1); v <= version; v++ {
		if _, err := db.Exec(`INSERT INTO order_status_history (order_no, version, status, changed_at) VALUES (?, ?, ?, ?)`,
			no, v, statusAt(t, v), placedAt.Add(time.Duration(v-1)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
}

// Advance raises order no to version on its shard (a status change the read
// side has not seen).
func (s *Shards) Advance(t testing.TB, no int64, version int32) {
	t.Helper()
	db := s.DBs[no%2]
	var cur int32
	var placed time.Time
	if err := db.QueryRow("SELECT version, placed_at FROM orders WHERE order_no = ?", no).Scan(&cur, &placed); err != nil {
		t.Fatal(err)
	}
	for v := cur + 1; v <= version; v++ {
		if _, err := db.Exec(`INSERT INTO order_status_history (order_no, version, status, changed_at) VALUES (?, ?, ?, ?)`,
			no, v, statusAt(t, v), placed.Add(time.Duration(v-1)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec("UPDATE orders SET version = ?, status = ? WHERE order_no = ?", version, statusAt(t, version), no); err != nil {
		t.Fatal(err)
	}
}

// Versions returns the version of every document in db, by order number.
func Versions(t testing.TB, db *mongo.Database) map[int64]int32 {
	t.Helper()
	cur, err := db.Collection(orderdoc.Collection).Find(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []orderdoc.Document
	if err := cur.All(context.Background(), &docs); err != nil {
		t.Fatal(err)
	}
	out := make(map[int64]int32, len(docs))
	for _, d := range docs {
		out[d.OrderNo] = d.Version
	}
	return out
}

// Documents returns every document in db, by order number.
func Documents(t testing.TB, db *mongo.Database) map[int64]orderdoc.Document {
	t.Helper()
	cur, err := db.Collection(orderdoc.Collection).Find(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []orderdoc.Document
	if err := cur.All(context.Background(), &docs); err != nil {
		t.Fatal(err)
	}
	out := make(map[int64]orderdoc.Document, len(docs))
	for _, d := range docs {
		out[d.OrderNo] = d
	}
	return out
}
