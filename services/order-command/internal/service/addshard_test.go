package service_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// A third shard added while orders flow: no request fails, new orders split
// about a third each, and old orders are still served where they are.
func TestAddShardUnderLoad(t *testing.T) {
	t.Parallel()
	three := testinfra.Shards(t, 3)
	initial := shard.Topology{Shards: three.Shards[:2], Epochs: []shard.Epoch{{FirstOrderNo: 1, Shards: []string{"shard-0", "shard-1"}}}}
	file := filepath.Join(t.TempDir(), "topology.json")
	if err := shard.WriteTopology(file, initial); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.TopologyFile, cfg.TopologyReload = file, 50*time.Millisecond
	h := startWith(t, initial, cfg)
	ctx := context.Background()

	old, err := h.grpc.PlaceOrder(ctx, placeRequest("before-the-add"))
	if err != nil {
		t.Fatal(err)
	}
	// A request the new epoch will place elsewhere than the old one did.
	withThree := shard.Topology{Shards: three.Shards, Epochs: []shard.Epoch{{FirstOrderNo: 1, Shards: []string{"shard-0", "shard-1", "shard-2"}}}}
	straddle := ""
	for i := 0; straddle == ""; i++ {
		id := fmt.Sprintf("straddle-%d", i)
		if initial.PlaceRequest(id).Shard != withThree.PlaceRequest(id).Shard {
			straddle = id
		}
	}
	first, err := h.grpc.PlaceOrder(ctx, placeRequest(straddle))
	if err != nil {
		t.Fatal(err)
	}

	var failures atomic.Int64
	var mu sync.Mutex
	var placed []int64
	stop := make(chan struct{})
	var load sync.WaitGroup
	for w := range 4 {
		load.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := h.grpc.PlaceOrder(ctx, placeRequest(fmt.Sprintf("load-%d-%d", w, i)))
				if err != nil {
					failures.Add(1)
					t.Errorf("a request failed while the shard was added: %v", err)
					continue
				}
				mu.Lock()
				placed = append(placed, resp.GetOrder().GetOrderNo())
				mu.Unlock()
			}
		})
	}

	pools := testinfra.OpenShards(t, initial)
	next, err := shard.AddShard(ctx, pools, three.Shards[2], 1_000)
	if err != nil {
		t.Fatal(err)
	}
	if err := shard.WriteTopology(file, next); err != nil {
		t.Fatal(err)
	}
	firstNo := next.Epochs[1].FirstOrderNo
	newOrders := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, no := range placed {
			if no >= firstNo {
				n++
			}
		}
		return n
	}
	testinfra.Eventually(t, 60*time.Second, func() bool { return newOrders() >= 900 }, "only %d orders in the new epoch", newOrders())
	close(stop)
	load.Wait()
	if failures.Load() > 0 {
		t.Fatalf("%d requests failed", failures.Load())
	}

	counts := map[string]int{}
	for _, no := range placed {
		loc, err := next.Route(no)
		if err != nil {
			t.Fatal(err)
		}
		if no < firstNo && loc.Shard == "shard-2" {
			t.Errorf("order %d of the old epoch routes to the new shard", no)
		}
		if no >= firstNo {
			counts[loc.Shard]++
		}
	}
	total := counts["shard-0"] + counts["shard-1"] + counts["shard-2"]
	for _, name := range []string{"shard-0", "shard-1", "shard-2"} {
		share := float64(counts[name]) / float64(total)
		if share < 0.25 || share > 0.42 {
			t.Errorf("%s got %.1f %% of the %d new orders, want about a third", name, 100*share, total)
		}
		var stored int
		dsn, _ := next.DSN(name)
		if err := testinfra.DB(t, dsn).QueryRow("SELECT COUNT(*) FROM orders WHERE order_no >= ?", firstNo).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored != counts[name] {
			t.Errorf("%s stores %d new orders, routing says %d", name, stored, counts[name])
		}
	}

	// A retry of a request placed before the add returns the first order,
	// though the new epoch would place it on another shard.
	again, err := h.grpc.PlaceOrder(ctx, placeRequest(straddle))
	if err != nil || again.GetOrder().GetOrderNo() != first.GetOrder().GetOrderNo() {
		t.Errorf("retry across the add: order %v (%v), want the first order %d", again.GetOrder().GetOrderNo(), err, first.GetOrder().GetOrderNo())
	}

	// The old order is still read, advanced and cancelled on its shard.
	no := old.GetOrder().GetOrderNo()
	if _, err := h.grpc.AdvanceOrder(ctx, &orderv1.AdvanceOrderRequest{OrderNo: no, Status: orderv1.Order_ACCEPTED}); err != nil {
		t.Errorf("advancing an order of the old epoch: %v", err)
	}
	if _, err := h.grpc.CancelOrder(ctx, &orderv1.CancelOrderRequest{OrderNo: no, Reason: "test"}); err != nil {
		t.Errorf("cancelling an order of the old epoch: %v", err)
	}
	got, err := h.grpc.GetOrder(ctx, &orderv1.GetOrderRequest{OrderNo: no})
	if err != nil || got.GetOrder().GetVersion() != 3 {
		t.Errorf("reading an order of the old epoch: %v %v", got, err)
	}
}
