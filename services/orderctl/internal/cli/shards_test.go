package cli_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/services/orderctl/internal/cli"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

func orderctl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := cli.New(&out, &errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String() + errOut.String(), err
}

// Add a shard with the CLI, list, and retire the old epoch once (and only
// once) none of its orders is left.
func TestShardsAddListRetire(t *testing.T) {
	t.Parallel()
	three := testinfra.Shards(t, 3)
	file := filepath.Join(t.TempDir(), "topology.json")
	if err := shard.WriteTopology(file, shard.Topology{Shards: three.Shards[:2],
		Epochs: []shard.Epoch{{FirstOrderNo: 1, Shards: []string{"shard-0", "shard-1"}}}}); err != nil {
		t.Fatal(err)
	}
	old := testinfra.DB(t, three.Shards[0].DSN)
	if _, err := old.Exec(`INSERT INTO orders (order_no, request_id, request_hash, user_id, shop_id, status, total_amount,
		delivery_address, version, placed_at, updated_at) VALUES (2, 'r', REPEAT('x', 32), 'u', 's', 'PLACED', 1, 'a', 1, NOW(6), NOW(6))`); err != nil {
		t.Fatal(err)
	}

	out, err := orderctl(t, "shards", "add", "--topology", file, "--name", "shard-2", "--headroom", "500", three.Shards[2].DSN)
	if err != nil || !strings.Contains(out, "shard-2 added") {
		t.Fatalf("shards add: %v\n%s", err, out)
	}
	topo, err := shard.LoadTopology(file)
	if err != nil || len(topo.Epochs) != 2 || len(topo.Shards) != 3 || topo.Epochs[1].FirstOrderNo != 2+500 {
		t.Fatalf("topology after add: %+v (%v), want a second epoch from 502 over three shards", topo, err)
	}
	var limit int64
	if err := old.QueryRow("SELECT limit_order_no FROM order_no_sequence WHERE epoch_first_order_no = 1").Scan(&limit); err != nil || limit != 502 {
		t.Errorf("the old epoch's sequence limit is %d (%v), want 502", limit, err)
	}
	if out, err := orderctl(t, "shards", "add", "--topology", file, "--name", "shard-2", three.Shards[2].DSN); err == nil {
		t.Errorf("adding the same shard twice succeeded:\n%s", out)
	}

	out, err = orderctl(t, "shards", "list", "--topology", file)
	if err != nil || !strings.Contains(out, "502") || !strings.Contains(out, "33.3 %") {
		t.Errorf("shards list: %v\n%s", err, out)
	}

	mongo := "--mongo=" + testinfra.MongoURI()
	if out, err := orderctl(t, "shards", "retire-epoch", "--topology", file, mongo, "1"); err == nil || !strings.Contains(err.Error(), "still has 1 orders") {
		t.Errorf("retiring an epoch with an order left: %v\n%s", err, out)
	}
	if _, err := old.Exec("DELETE FROM orders"); err != nil {
		t.Fatal(err)
	}
	if out, err := orderctl(t, "shards", "retire-epoch", "--topology", file, mongo, "502"); err == nil {
		t.Errorf("retiring the current epoch succeeded:\n%s", out)
	}
	if out, err := orderctl(t, "shards", "retire-epoch", "--topology", file, mongo, "1"); err != nil {
		t.Fatalf("retire-epoch: %v\n%s", err, out)
	}
	topo, err = shard.LoadTopology(file)
	if err != nil || len(topo.Epochs) != 1 || topo.Epochs[0].FirstOrderNo != 502 {
		t.Errorf("topology after retiring: %+v (%v)", topo, err)
	}
}
