package shard_test

import (
	"context"
	"errors"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// A batch commits all of its statements or none, and a failed batch leaves
// no open transaction behind on the pooled connection.
func TestExecAtomic(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 1)
	cfg := testinfra.TestPool()
	cfg.MaxOpenConns, cfg.MaxIdleConns = 1, 1 // every batch reuses one connection
	pools, err := shard.Open(topo, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pools.Close()
	ctx := context.Background()
	name := topo.Shards[0].Name
	item := "INSERT INTO order_items (order_no, line_no, menu_id, name, quantity, unit_price) VALUES (?, ?, 'm', ?, 1, 1)"
	countItems := func() int {
		db, _ := pools.DB(name)
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM order_items").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	tests := []struct {
		name      string
		build     func(b *shard.Batch)
		wantErr   uint16
		wantCount int
	}{
		{name: "all statements commit", build: func(b *shard.Batch) {
			b.Add(item, 1, 1, "a")
			b.Add(item, 1, 2, "semi;colon 'quote' \\ back")
		}, wantCount: 2},
		{name: "a failing statement rolls back the earlier ones", build: func(b *shard.Batch) {
			b.Add(item, 2, 1, "kept?")
			b.Add(item, 1, 1, "duplicate")
		}, wantErr: 1062, wantCount: 2},
		{name: "the connection is clean afterwards", build: func(b *shard.Batch) {
			b.Add(item, 3, 1, "after")
		}, wantCount: 3},
	}
	for _, tc := range tests {
		var b shard.Batch
		tc.build(&b)
		err := pools.ExecAtomic(ctx, name, &b)
		var me *mysql.MySQLError
		switch {
		case tc.wantErr == 0 && err != nil:
			t.Fatalf("%s: %v", tc.name, err)
		case tc.wantErr != 0 && (!errors.As(err, &me) || me.Number != tc.wantErr):
			t.Fatalf("%s: error %v, want MySQL error %d", tc.name, err, tc.wantErr)
		}
		if n := countItems(); n != tc.wantCount {
			t.Fatalf("%s: %d rows committed, want %d", tc.name, n, tc.wantCount)
		}
	}
	// A value with SQL in it is stored as text, not executed.
	db, _ := pools.DB(name)
	var got string
	if err := db.QueryRowContext(ctx, "SELECT name FROM order_items WHERE order_no = 1 AND line_no = 2").Scan(&got); err != nil || got != "semi;colon 'quote' \\ back" {
		t.Errorf("stored %q (%v)", got, err)
	}
}
