package tests

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// A shard added with orderctl while the whole system runs: the command side,
// the relay and the projector take it up from the topology file, and orders
// placed on the new shard reach the read side.
func TestAddedShardFlowsEndToEnd(t *testing.T) {
	testinfra.Integration(t)
	t.Parallel()
	// Created first, so that it is dropped only after the services stopped.
	addrs := testinfra.MySQLAddrs()
	dsn := testinfra.CreateDatabase(t, "root@tcp("+addrs[len(addrs)-1]+")/", testinfra.UniqueName(t, "added"))
	p := startPipeline(t)
	p.projector()
	before := p.place("before-add", "user-a", "shop-a")

	out, err := exec.Command(filepath.Join(binaries(t), "orderctl"), "shards", "add", "--topology", p.topologyFile,
		"--name", "shard-new", dsn).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "shard-new added") {
		t.Fatalf("orderctl shards add: %v\n%s", err, out)
	}
	topo, err := shard.LoadTopology(p.topologyFile)
	if err != nil {
		t.Fatal(err)
	}

	// Place until an order lands on the new shard (a third of them should,
	// once the command side has reloaded the topology).
	var onNew string
	testinfra.Eventually(t, 30*time.Second, func() bool {
		no := p.place(testinfra.UniqueName(t, "after"), "user-a", "shop-a")
		var n int64
		_, _ = fmt.Sscan(no, &n)
		if loc, err := topo.Route(n); err == nil && loc.Shard == "shard-new" {
			onNew = no
			return true
		}
		return false
	}, "no order reached the new shard")
	for _, no := range []string{before, onNew} {
		testinfra.Eventually(t, 30*time.Second, func() bool {
			code, body := p.do("GET", fmt.Sprintf("http://%s/v1/orders/%s?minVersion=1", p.query, no), "")
			return code == 200 && body["stale"] == false
		}, "order %s never reached the read side", no)
	}
}
