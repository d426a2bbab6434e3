package service_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/orderflow/orderflow/services/order-query/internal/service"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// withShards points the service at a fresh two-shard topology, written to a
// file as ORDERFLOW_TOPOLOGY_FILE would name it, and returns the topology
// and the file.
func withShards(t *testing.T) (shard.Topology, string, func(*service.Config)) {
	t.Helper()
	topo := testinfra.Shards(t, 2)
	file := filepath.Join(t.TempDir(), "topology.json")
	writeTopology(t, file, topo)
	return topo, file, func(c *service.Config) {
		c.TopologyFile = file
		c.Shard = testinfra.TestPool()
	}
}

func writeTopology(t *testing.T, file string, topo shard.Topology) {
	t.Helper()
	raw, err := json.Marshal(topo)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// placeOnShard writes the order's row to the shard its number routes to,
// as order-command does when it places an order.
func placeOnShard(t *testing.T, topo shard.Topology, orderNo int64) {
	t.Helper()
	loc, err := topo.Route(orderNo)
	if err != nil {
		t.Fatal(err)
	}
	dsn, _ := topo.DSN(loc.Shard)
	now := time.Now().UTC()
	if _, err := testinfra.DB(t, dsn).Exec(`INSERT INTO orders (order_no, request_id, request_hash, user_id, shop_id, status, total_amount,
		delivery_address, version, placed_at, updated_at) VALUES (?, ?, ?, 'user-1', 'shop-1', 'PLACED', 19500, 'Seoul', 1, ?, ?)`,
		orderNo, uuid.NewString(), make([]byte, 32), now, now); err != nil {
		t.Fatal(err)
	}
}

// With the shards configured, a read with minVersion of an order that was
// never placed is NOT_FOUND at once, over REST and gRPC; an order that was
// placed and is not projected yet is still waited for.
func TestMinVersionOfAnOrderNeverPlaced(t *testing.T) {
	t.Parallel()
	const wait = 4 * time.Second
	topo, _, shards := withShards(t)
	h := start(t, shards, func(c *service.Config) { c.MinVersionWait = wait; c.RequestTimeout = 3 * wait })
	placeOnShard(t, topo, 42)

	tests := []struct {
		name string
		// read returns the HTTP status, or the gRPC code, and the order's
		// version when it was found.
		read        func(t *testing.T) (code int, version int64)
		wantCode    int
		wantVersion int64
		// project, when set, is the document the projector writes while
		// the read waits.
		project int64
	}{
		{name: "REST, never placed", read: func(t *testing.T) (int, int64) {
			code, _ := h.get("/v1/orders/43?minVersion=1")
			return code, 0
		}, wantCode: http.StatusNotFound},
		{name: "REST, never placed, a later version", read: func(t *testing.T) (int, int64) {
			code, _ := h.get("/v1/orders/45?minVersion=3")
			return code, 0
		}, wantCode: http.StatusNotFound},
		{name: "gRPC, never placed", read: func(t *testing.T) (int, int64) {
			_, err := h.grpc.GetOrder(context.Background(), &orderv1.GetOrderViewRequest{OrderNo: 47, MinVersion: 1})
			return int(status.Code(err)), 0
		}, wantCode: int(codes.NotFound)},
		{name: "REST, placed, projected while the read waits", project: 42, read: func(t *testing.T) (int, int64) {
			code, body := h.get("/v1/orders/42?minVersion=1")
			v, _ := orderField(body, "version").(float64)
			return code, int64(v)
		}, wantCode: http.StatusOK, wantVersion: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.project != 0 {
				projector := time.AfterFunc(200*time.Millisecond, func() { h.put(doc(tc.project, "user-1", "shop-1", 0)) })
				t.Cleanup(func() { projector.Stop() })
			}
			began := time.Now()
			code, version := tc.read(t)
			took := time.Since(began)
			if code != tc.wantCode || version != tc.wantVersion {
				t.Fatalf("code %d version %d, want %d version %d", code, version, tc.wantCode, tc.wantVersion)
			}
			// A bound, not a performance goal: the answer did not wait out
			// the configured wait.
			if took >= wait/2 {
				t.Errorf("answered after %s, want well within the %s wait", took, wait)
			}
		})
	}
}

// A shard that cannot say whether the order exists does not turn a late
// document into NOT_FOUND: the read waits for it as without shards.
func TestMinVersionWaitsWhenTheShardCannotTell(t *testing.T) {
	t.Parallel()
	topo, private := testinfra.ShardsWithPrivate(t)
	file := filepath.Join(t.TempDir(), "topology.json")
	writeTopology(t, file, topo)
	h := start(t, func(c *service.Config) {
		c.TopologyFile, c.Shard = file, testinfra.TestPool()
		c.MinVersionWait, c.RequestTimeout = 4*time.Second, 12*time.Second
	})
	const orderNo = 51 // 51 % 2: shard-1, the private server
	if loc, err := topo.Route(orderNo); err != nil || loc.Shard != "shard-1" {
		t.Fatalf("order %d routes to %v (%v), want shard-1", orderNo, loc, err)
	}
	private.Kill()
	projector := time.AfterFunc(200*time.Millisecond, func() { h.put(doc(orderNo, "user-1", "shop-1", 0)) })
	t.Cleanup(func() { projector.Stop() })
	code, body := h.get("/v1/orders/51?minVersion=1")
	if code != http.StatusOK || orderField(body, "version") != float64(1) || body["stale"] != false {
		t.Fatalf("HTTP %d %v, want version 1, not stale", code, body)
	}
}

// A shard added while the service runs, before its topology watch looked
// again, does not make an order of the new epoch NOT_FOUND: the read loads
// the topology before it reports an order of the newest epoch missing.
func TestMinVersionOfAnOrderOnAShardAddedMeanwhile(t *testing.T) {
	t.Parallel()
	const wait = 4 * time.Second
	topo, file, shards := withShards(t)
	h := start(t, shards, func(c *service.Config) {
		c.MinVersionWait, c.RequestTimeout = wait, 3*wait
		c.TopologyReload = 0 // no watch: only the read's own reload sees the new epoch
	})
	added := testinfra.Shards(t, 1).Shards[0]
	added.Name = "shard-2"
	grown := shard.Topology{
		Shards: append(append([]shard.Spec(nil), topo.Shards...), added),
		Epochs: append(append([]shard.Epoch(nil), topo.Epochs...),
			shard.Epoch{FirstOrderNo: 1000, Shards: []string{"shard-0", "shard-1", "shard-2"}}),
	}
	writeTopology(t, file, grown)
	const orderNo = 1001 // 1001 % 3: shard-2; the old topology routes it to shard-1
	if loc, err := grown.Route(orderNo); err != nil || loc.Shard != "shard-2" {
		t.Fatalf("order %d routes to %v (%v), want shard-2", orderNo, loc, err)
	}
	placeOnShard(t, grown, orderNo)

	projector := time.AfterFunc(200*time.Millisecond, func() { h.put(doc(orderNo, "user-1", "shop-1", 0)) })
	t.Cleanup(func() { projector.Stop() })
	code, body := h.get("/v1/orders/1001?minVersion=1")
	if code != http.StatusOK || orderField(body, "version") != float64(1) {
		t.Fatalf("HTTP %d %v, want version 1: the order is on the added shard", code, body)
	}
	began := time.Now()
	if code, body := h.get("/v1/orders/1004?minVersion=1"); code != http.StatusNotFound {
		t.Errorf("an order of the new epoch never placed: HTTP %d %v, want 404", code, body)
	}
	if took := time.Since(began); took >= wait/2 {
		t.Errorf("NOT_FOUND after %s, want well within the %s wait", took, wait)
	}
}
