package lifecycle_test

import (
	"context"
	"database/sql"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orderflow/orderflow/shared/lifecycle"
	"github.com/orderflow/orderflow/shared/lifecycle/retention"
	"github.com/orderflow/orderflow/shared/orderdoc"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/sqlrows"
	"github.com/orderflow/orderflow/shared/testinfra"
)

var now = time.Date(2026, 12, 31, 12, 0, 0, 0, time.UTC)

func putOrder(t *testing.T, db *sql.DB, no int64, version int32, placed time.Time, outboxStatus string) {
	t.Helper()
	if _, err := db.Exec(`INSERT INTO orders (order_no, request_id, request_hash, user_id, shop_id, status, total_amount,
		delivery_address, version, placed_at, updated_at) VALUES (?, ?, ?, 'u', 's', 'PLACED', 100, 'Seoul', ?, ?, ?)`,
		no, uuid.NewString(), make([]byte, 32), version, placed, placed); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"INSERT INTO order_items (order_no, line_no, menu_id, name, quantity, unit_price) VALUES (?, 1, 'm', 'n', 1, 100)",
		"INSERT INTO order_status_history (order_no, version, status, changed_at) VALUES (?, 1, 'PLACED', NOW(6))",
	} {
		if _, err := db.Exec(q, no); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO outbox (event_id, event_type, order_no, order_version, occurred_at, status)
		VALUES (?, 'OrderPlaced', ?, 1, ?, ?)`, uuid.NewString(), no, placed, outboxStatus); err != nil {
		t.Fatal(err)
	}
}

func putDoc(t *testing.T, coll *mongo.Collection, no int64, version int32) {
	t.Helper()
	if _, err := coll.InsertOne(context.Background(), orderdoc.Document{OrderNo: no, Version: version}); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Old orders go, in batches, only when the read side has their latest
// version and all their events were published; recent orders stay; the
// documents stay as history; an old epoch without orders can be retired.
func TestPurge(t *testing.T) {
	t.Parallel()
	base := testinfra.Shards(t, 1)
	topo := shard.Topology{Shards: base.Shards, Epochs: []shard.Epoch{
		{FirstOrderNo: 1, Shards: []string{"shard-0"}}, {FirstOrderNo: 1000, Shards: []string{"shard-0"}},
	}}
	pools := testinfra.OpenShards(t, topo)
	mdb := testinfra.MongoDatabase(t)
	docs := mdb.Collection(orderdoc.Collection)
	db := testinfra.DB(t, topo.Shards[0].DSN)
	old := now.Add(-31 * 24 * time.Hour)
	for no := int64(1); no <= 12; no++ { // settled old orders of the first epoch
		putOrder(t, db, no, 1, old.Add(time.Duration(no)*time.Minute), "PUBLISHED")
		putDoc(t, docs, no, 1)
	}
	putOrder(t, db, 1001, 2, old, "PUBLISHED") // the read side is behind
	putDoc(t, docs, 1001, 1)
	putOrder(t, db, 1002, 1, old, "PENDING") // an event not published yet
	putDoc(t, docs, 1002, 1)
	putOrder(t, db, 1003, 1, now.Add(-29*24*time.Hour), "PUBLISHED") // inside the retention
	putDoc(t, docs, 1003, 1)

	p := lifecycle.NewPurger(pools, mdb)
	cfg := lifecycle.PurgeConfig{Retention: 30 * 24 * time.Hour, Now: now, Batch: 5, DryRun: true}
	dry, err := p.Purge(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if dry[0].Purged != 12 || dry[0].Held != 2 || count(t, db, "orders") != 15 {
		t.Fatalf("dry run: %+v with %d orders left, want 12 to purge, 2 held, nothing deleted", dry, count(t, db, "orders"))
	}

	cfg.DryRun = false
	batches := 0
	res, err := p.Purge(context.Background(), cfg, func(lifecycle.ShardResult) { batches++ })
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Purged != 12 || res[0].Held != 2 || batches < 3 {
		t.Errorf("purge: %+v in %d batches, want 12 purged in batches of 5, 2 held", res, batches)
	}
	rows, err := db.Query("SELECT order_no FROM orders ORDER BY order_no")
	if err != nil {
		t.Fatal(err)
	}
	left, err := sqlrows.ScanAll(rows, func(rows *sql.Rows) (int64, error) {
		var no int64
		err := rows.Scan(&no)
		return no, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 3 || left[0] != 1001 || left[2] != 1003 {
		t.Errorf("orders left %v, want 1001, 1002 and 1003", left)
	}
	for _, table := range []string{"order_items", "order_status_history", "outbox"} {
		if n := count(t, db, table); n != 3 {
			t.Errorf("%s has %d rows left, want the 3 orders' rows", table, n)
		}
	}
	if n, _ := docs.CountDocuments(context.Background(), map[string]any{}); n != 15 {
		t.Errorf("%d documents, want all 15 kept as history", n)
	}

	epochs, err := p.Epochs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !epochs[0].Retirable || epochs[0].Orders != 0 || epochs[1].Retirable || epochs[1].Orders != 3 {
		t.Errorf("epochs %+v, want the first (empty) retirable and the current one not", epochs)
	}
}

// change does to an order what order-command does when it advances or
// cancels one: under the lock of its row, the next version, its history
// entry and a PENDING outbox row, in one transaction.
func change(ctx context.Context, db *sql.DB, no int64, status, eventType string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	var version int32
	if err := tx.QueryRowContext(ctx, "SELECT version FROM orders WHERE order_no = ? FOR UPDATE", no).Scan(&version); err != nil {
		return err
	}
	version++
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"UPDATE orders SET status = ?, version = ?, updated_at = NOW(6) WHERE order_no = ?", []any{status, version, no}},
		{"INSERT INTO order_status_history (order_no, version, status, changed_at) VALUES (?, ?, ?, NOW(6))", []any{no, version, status}},
		{`INSERT INTO outbox (event_id, event_type, order_no, order_version, occurred_at, status)
			VALUES (?, ?, ?, ?, NOW(6), 'PENDING')`, []any{uuid.NewString(), eventType, no, version}},
	} {
		if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// An order that changes after the purge checked it and before the delete
// (advanced, cancelled, or an event of it replayed) keeps its new state and
// its unpublished outbox row; the other orders of the batch are purged.
func TestPurgeKeepsOrdersChangedAfterTheCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		change      func(ctx context.Context, db *sql.DB, no int64) error
		wantVersion int32
		wantStatus  string
	}{
		{name: "advanced", wantVersion: 2, wantStatus: "ACCEPTED",
			change: func(ctx context.Context, db *sql.DB, no int64) error {
				return change(ctx, db, no, "ACCEPTED", "OrderAccepted")
			}},
		{name: "cancelled", wantVersion: 2, wantStatus: "CANCELLED",
			change: func(ctx context.Context, db *sql.DB, no int64) error {
				return change(ctx, db, no, "CANCELLED", "OrderCancelled")
			}},
		{name: "event replayed", wantVersion: 1, wantStatus: "PLACED",
			change: func(ctx context.Context, db *sql.DB, no int64) error {
				_, err := db.ExecContext(ctx, "UPDATE outbox SET status = 'PENDING' WHERE order_no = ?", no)
				return err
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			topo := testinfra.Shards(t, 1)
			pools := testinfra.OpenShards(t, topo)
			mdb := testinfra.MongoDatabase(t)
			docs := mdb.Collection(orderdoc.Collection)
			db := testinfra.DB(t, topo.Shards[0].DSN)
			old := now.Add(-31 * 24 * time.Hour)
			const target = 2
			for no := int64(1); no <= 3; no++ {
				putOrder(t, db, no, 1, old.Add(time.Duration(no)*time.Minute), "PUBLISHED")
				putDoc(t, docs, no, 1)
			}
			changed := false
			cfg := lifecycle.WithAfterCheck(lifecycle.PurgeConfig{Retention: 30 * 24 * time.Hour, Now: now, Batch: 10},
				func(ctx context.Context, _ string, nos []int64) {
					if changed || !slices.Contains(nos, target) {
						return
					}
					changed = true
					if err := tc.change(ctx, db, target); err != nil {
						t.Errorf("changing order %d: %v", target, err)
					}
				})

			res, err := lifecycle.NewPurger(pools, mdb).Purge(context.Background(), cfg, nil)

			if err != nil {
				t.Fatal(err)
			}
			if !changed {
				t.Fatalf("order %d was never checked", target)
			}
			if res[0].Purged != 2 || res[0].Held != 1 {
				t.Errorf("purge: %+v, want 2 purged and the changed order held", res)
			}
			var status string
			var version int32
			if err := db.QueryRow("SELECT status, version FROM orders WHERE order_no = ?", target).Scan(&status, &version); err != nil {
				t.Fatalf("the changed order is gone: %v", err)
			}
			if status != tc.wantStatus || version != tc.wantVersion {
				t.Errorf("changed order: %s version %d, want %s version %d", status, version, tc.wantStatus, tc.wantVersion)
			}
			var pending int
			if err := db.QueryRow("SELECT COUNT(*) FROM outbox WHERE order_no = ? AND status = 'PENDING'", target).Scan(&pending); err != nil || pending != 1 {
				t.Errorf("changed order has %d PENDING outbox rows (%v), want its unpublished event kept", pending, err)
			}
			if n := count(t, db, "orders"); n != 1 {
				t.Errorf("%d orders left, want only the changed one", n)
			}
		})
	}
}

// The purge refuses a retention shorter than the longest an order can still
// be changed, and a batch below one.
func TestPurgeConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     lifecycle.PurgeConfig
		wantErr bool
	}{
		{name: "30 days", cfg: lifecycle.PurgeConfig{Retention: retention.Min, Batch: 1}},
		{name: "a year", cfg: lifecycle.PurgeConfig{Retention: 365 * 24 * time.Hour, Batch: 500}},
		{name: "shorter than the change window", cfg: lifecycle.PurgeConfig{Retention: retention.Min - time.Second, Batch: 500}, wantErr: true},
		{name: "zero retention", cfg: lifecycle.PurgeConfig{Batch: 500}, wantErr: true},
		{name: "zero batch", cfg: lifecycle.PurgeConfig{Retention: retention.Min}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := tc.cfg.Validate(); (err != nil) != tc.wantErr {
				t.Errorf("Validate() = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}
