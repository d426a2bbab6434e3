package service_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// Epochs added and the oldest retired, round after round, through the
// topology file the service reloads, while orders are placed: no request
// fails (a request that straddles a reload keeps the topology it started
// with), and every order is stored on the one shard its number routes to.
func TestEpochsAddedAndRetiredUnderLoad(t *testing.T) {
	t.Parallel()
	const rounds = 4
	all := testinfra.Shards(t, 2+rounds)
	initial := shard.Topology{Shards: all.Shards[:2], Epochs: []shard.Epoch{{FirstOrderNo: 1, Shards: []string{"shard-0", "shard-1"}}}}
	file := filepath.Join(t.TempDir(), "topology.json")
	if err := shard.WriteTopology(file, initial); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.TopologyFile, cfg.TopologyReload = file, 20*time.Millisecond
	// Every request the new epoch places elsewhere first looks where the
	// previous epoch placed it: a shard round trip between reading the
	// topology and allocating the number, where a reload can land.
	cfg.RetryWindow = 24 * time.Hour
	h := startWith(t, initial, cfg)
	ctx := context.Background()

	type placedOrder struct {
		requestID string
		no        int64
	}
	var mu sync.Mutex
	var placed []placedOrder
	var failures []error
	// orderIn returns an order placed with a number in [from, to) (to 0:
	// no upper bound).
	orderIn := func(from, to int64) (int64, bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range slices.Backward(placed) {
			if p.no >= from && (to == 0 || p.no < to) {
				return p.no, true
			}
		}
		return 0, false
	}
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
				id := fmt.Sprintf("epochs-%d-%d", w, i)
				resp, err := h.grpc.PlaceOrder(ctx, placeRequest(id))
				mu.Lock()
				if err != nil {
					failures = append(failures, fmt.Errorf("%s: %w", id, err))
				} else {
					placed = append(placed, placedOrder{requestID: id, no: resp.GetOrder().GetOrderNo()})
				}
				mu.Unlock()
			}
		})
	}
	stopLoad := sync.OnceFunc(func() {
		close(stop)
		load.Wait()
	})
	defer stopLoad()

	// history keeps every epoch ever published: epochs never overlap or
	// change, so it routes every order, also those of retired epochs.
	history := initial
	ops := testinfra.OpenShards(t, initial)
	publish := func(next shard.Topology) {
		t.Helper()
		if err := shard.WriteTopology(file, next); err != nil {
			t.Fatal(err)
		}
		if _, err := ops.Extend(next); err != nil {
			t.Fatal(err)
		}
	}
	testinfra.Eventually(t, 10*time.Second, func() bool { _, ok := orderIn(1, 0); return ok }, "no order was placed")
	for r := range rounds {
		next, err := shard.AddShard(ctx, ops, all.Shards[2+r], 1_000_000)
		if err != nil {
			t.Fatal(err)
		}
		publish(next)
		newest := next.Epochs[next.Current()]
		history.Shards = next.Shards
		history.Epochs = append(history.Epochs, newest)
		testinfra.Eventually(t, 10*time.Second, func() bool { _, ok := orderIn(newest.FirstOrderNo, 0); return ok },
			"round %d: no order placed in the epoch from %d", r, newest.FirstOrderNo)

		oldest := next.Epochs[0]
		retired, err := next.Retire(oldest.FirstOrderNo)
		if err != nil {
			t.Fatal(err)
		}
		inRetired, ok := orderIn(oldest.FirstOrderNo, next.Epochs[1].FirstOrderNo)
		if !ok {
			t.Fatalf("round %d: no order in the epoch from %d", r, oldest.FirstOrderNo)
		}
		publish(retired)
		// Once the service has loaded the retirement, an order of the
		// retired epoch no longer routes anywhere.
		testinfra.Eventually(t, 10*time.Second, func() bool {
			_, err := h.grpc.GetOrder(ctx, &orderv1.GetOrderRequest{OrderNo: inRetired})
			return status.Code(err) == codes.NotFound
		}, "round %d: order %d of the retired epoch from %d is still served", r, inRetired, oldest.FirstOrderNo)
	}
	// Orders keep flowing after the last round.
	mu.Lock()
	before := len(placed)
	mu.Unlock()
	testinfra.Eventually(t, 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(placed) >= before+50 },
		"orders stopped after the last round")
	stopLoad()

	mu.Lock()
	defer mu.Unlock()
	for _, err := range failures {
		t.Errorf("a request failed while epochs were added and retired: %v", err)
	}
	stored := map[int64]string{}
	for _, s := range history.Shards {
		rows, err := testinfra.DB(t, s.DSN).Query("SELECT order_no FROM orders")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var no int64
			if err := rows.Scan(&no); err != nil {
				t.Fatal(err)
			}
			if other, dup := stored[no]; dup {
				t.Errorf("order %d is stored on %s and %s", no, other, s.Name)
			}
			stored[no] = s.Name
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	if len(stored) != len(placed) {
		t.Errorf("the shards hold %d orders, %d were placed", len(stored), len(placed))
	}
	epochs := map[int64]int{}
	for _, p := range placed {
		loc, err := history.Route(p.no)
		if err != nil {
			t.Fatalf("order %d (%s): %v", p.no, p.requestID, err)
		}
		epochs[loc.EpochFirstOrderNo]++
		if stored[p.no] != loc.Shard {
			t.Errorf("order %d (%s) routes to %s but is stored on %q", p.no, p.requestID, loc.Shard, stored[p.no])
		}
	}
	if len(epochs) != rounds+1 {
		t.Errorf("orders were placed in the epochs %v, want all %d", epochs, rounds+1)
	}
}
