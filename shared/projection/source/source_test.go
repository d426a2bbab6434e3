package source_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/orderflow/orderflow/shared/projection/source"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// Read returns each order of a batch with its items in line order and its
// history up to the order row's version, from two shards in one call;
// numbers with no order are left out, and an order stored without history
// (broken: no write of orderflow makes one) comes back as it is, for the
// projector's validation to set aside.
func TestReadReturnsOrdersWithItemsAndHistoryUpToTheirVersion(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 2)
	pools, err := shard.Open(topo, testinfra.TestPool())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pools.Close() })

	placed := time.Date(2026, 12, 2, 11, 0, 0, 123456000, time.UTC)
	type row struct {
		no      int64
		version int
		items   []string // menu ids by line
		history []string // statuses of versions 1, 2, ...; none: a broken order
	}
	rows := []row{
		{no: 10, version: 2, items: []string{"m-1", "m-2", "m-3"}, history: []string{"PLACED", "ACCEPTED"}},
		// A change under way: its history row is in, the order row still at
		// version 1 (the read must not show the history ahead of the row).
		{no: 11, version: 1, items: []string{"m-9"}, history: []string{"PLACED", "CANCELLED"}},
		{no: 12, version: 1, items: []string{"m-4"}, history: []string{"PLACED"}},
		{no: 15, version: 1, items: []string{"m-5"}},
	}
	for _, r := range rows {
		loc, err := topo.Route(r.no)
		if err != nil {
			t.Fatal(err)
		}
		dsn, _ := topo.DSN(loc.Shard)
		db := testinfra.DB(t, dsn)
		if _, err := db.Exec(`INSERT INTO orders (order_no, request_id, request_hash, user_id, shop_id, status,
			total_amount, delivery_address, cancel_reason, version, placed_at, updated_at)
			VALUES (?, ?, '', 'u-1', 's-1', ?, 100, 'Seoul', NULL, ?, ?, ?)`,
			r.no, "req-"+string(rune('a'+r.no)), "PLACED", r.version, placed, placed); err != nil {
			t.Fatal(err)
		}
		for line := len(r.items); line >= 1; line-- {
			if _, err := db.Exec("INSERT INTO order_items (order_no, line_no, menu_id, name, quantity, unit_price) VALUES (?, ?, ?, 'dish', 1, 100)",
				r.no, line, r.items[line-1]); err != nil {
				t.Fatal(err)
			}
		}
		for v, status := range r.history {
			if _, err := db.Exec("INSERT INTO order_status_history (order_no, version, status, changed_at) VALUES (?, ?, ?, ?)",
				r.no, v+1, status, placed.Add(time.Duration(v)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
	}

	reader := source.NewReader(pools)
	got, err := reader.Read(context.Background(), []int64{10, 11, 12, 13, 14, 15})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("read %d orders, want 10, 11, 12 and 15 (13 and 14 were never placed): %v", len(got), got)
	}
	// One number on its shard.
	if one, err := reader.Read(context.Background(), []int64{12}); err != nil || len(one) != 1 || one[12].Version != 1 {
		t.Errorf("Read([12]) = %v, %v; want order 12", one, err)
	}
	for _, r := range rows {
		o, ok := got[r.no]
		if !ok {
			t.Errorf("order %d missing", r.no)
			continue
		}
		var items []string
		for _, it := range o.Items {
			items = append(items, it.MenuID)
		}
		var history []string
		for i, c := range o.History {
			history = append(history, c.Status)
			if want := placed.Add(time.Duration(i) * time.Minute); c.Version != int32(i+1) || !c.ChangedAt.Equal(want) {
				t.Errorf("order %d history entry %d: version %d at %s, want version %d at %s", r.no, i, c.Version, c.ChangedAt, i+1, want)
			}
		}
		loc, _ := topo.Route(r.no)
		if o.Shard != loc.Shard || int(o.Version) != r.version || o.UserID != "u-1" || o.DeliveryAddress != "Seoul" || !o.PlacedAt.Equal(placed) {
			t.Errorf("order %d: %+v", r.no, o)
		}
		if !slices.Equal(items, r.items) {
			t.Errorf("order %d items %v, want %v in line order", r.no, items, r.items)
		}
		if want := r.history[:min(r.version, len(r.history))]; !slices.Equal(history, want) {
			t.Errorf("order %d history %v, want %v (up to version %d)", r.no, history, want, r.version)
		}
	}
}
