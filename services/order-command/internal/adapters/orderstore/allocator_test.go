package orderstore_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/orderflow/orderflow/services/order-command/internal/adapters/orderstore"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

func newAllocator(t *testing.T, pools *shard.Pools, block int) *orderstore.Allocator {
	t.Helper()
	a, err := orderstore.NewAllocator(pools, block, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Two instances (allocators) drawing from the same shards at once never hand
// out one number twice, every number routes to the shard it was drawn for,
// and an instance that restarts continues above what was reserved.
func TestAllocatorNumbersAreUniqueAcrossInstancesAndRestarts(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 2)
	pools := testinfra.OpenShards(t, topo)
	instances := []*orderstore.Allocator{newAllocator(t, pools, 7), newAllocator(t, pools, 7)}
	var mu sync.Mutex
	seen := map[int64]string{}
	var wg sync.WaitGroup
	for _, a := range instances {
		for w := range 4 {
			wg.Go(func() {
				loc := shard.Location{Shard: topo.Epochs[0].Shards[w%2], EpochFirstOrderNo: 1, Index: w % 2, Count: 2}
				for range 200 {
					n, err := a.Next(context.Background(), topo, loc)
					if err != nil {
						t.Errorf("Next: %v", err)
						return
					}
					routed, err := topo.Route(n)
					mu.Lock()
					if prev, dup := seen[n]; dup {
						t.Errorf("number %d handed out twice (%s and %s)", n, prev, loc.Shard)
					}
					seen[n] = loc.Shard
					mu.Unlock()
					if err != nil || routed.Shard != loc.Shard {
						t.Errorf("number %d drawn for %s routes to %s (%v)", n, loc.Shard, routed.Shard, err)
					}
				}
			})
		}
	}
	wg.Wait()
	var highest int64
	for n := range seen {
		highest = max(highest, n)
	}
	restarted := newAllocator(t, pools, 7)
	for i := range 2 {
		loc := shard.Location{Shard: topo.Epochs[0].Shards[i], EpochFirstOrderNo: 1, Index: i, Count: 2}
		n, err := restarted.Next(context.Background(), topo, loc)
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := seen[n]; dup || n <= highest-int64(2*7*2) {
			t.Errorf("after a restart %s handed out %d; numbers so far reach %d", loc.Shard, n, highest)
		}
	}
}

// While the shard holding the sequence is unreachable, an instance keeps
// handing out the numbers it already holds.
func TestAllocatorKeepsHandingOutHeldNumbersWhileTheShardIsDown(t *testing.T) {
	t.Parallel()
	private := testinfra.StartMariaDB(t)
	topo := shard.Topology{
		Shards: []shard.Spec{{Name: "only", DSN: testinfra.CreateDatabase(t, private.ServerDSN(), "orderflow")}},
		Epochs: []shard.Epoch{{FirstOrderNo: 1, Shards: []string{"only"}}},
	}
	pools := testinfra.OpenShards(t, topo)
	const block = 100
	a := newAllocator(t, pools, block)
	loc := topo.PlaceRequest("any")
	first, err := a.Next(context.Background(), topo, loc)
	if err != nil {
		t.Fatal(err)
	}
	private.Kill()
	held := 1
	for ; held < block; held++ {
		n, err := a.Next(context.Background(), topo, loc)
		if err != nil {
			break
		}
		if n != first+int64(held) {
			t.Fatalf("number %d after %d", n, first+int64(held)-1)
		}
	}
	if held != block {
		t.Errorf("handed out %d numbers with the shard down, want the whole held block of %d", held, block)
	}
	if _, err := a.Next(context.Background(), topo, loc); !errors.Is(err, shard.ErrUnavailable) {
		t.Errorf("after the held numbers ran out: %v, want ErrUnavailable", err)
	}
}

// An epoch that has a successor never hands out numbers at or above the
// successor's first number.
func TestAllocatorStopsAtTheNextEpoch(t *testing.T) {
	t.Parallel()
	base := testinfra.Shards(t, 1)
	topo := shard.Topology{
		Shards: base.Shards,
		Epochs: []shard.Epoch{{FirstOrderNo: 1, Shards: []string{"shard-0"}}, {FirstOrderNo: 21, Shards: []string{"shard-0"}}},
	}
	pools := testinfra.OpenShards(t, topo)
	a := newAllocator(t, pools, 8)
	old := shard.Location{Shard: "shard-0", EpochFirstOrderNo: 1, Index: 0, Count: 1}
	var got []int64
	for {
		n, err := a.Next(context.Background(), topo, old)
		if errors.Is(err, orderstore.ErrEpochExhausted) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
		if len(got) > 100 {
			t.Fatal("the old epoch never ran out")
		}
	}
	if len(got) != 20 || got[0] != 1 || got[19] != 20 {
		t.Errorf("old epoch handed out %v, want 1..20", got)
	}
	n, err := a.Next(context.Background(), topo, shard.Location{Shard: "shard-0", EpochFirstOrderNo: 21, Index: 0, Count: 1})
	if err != nil || n != 21 {
		t.Errorf("new epoch starts with %d (%v), want 21", n, err)
	}
}
