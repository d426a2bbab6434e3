package service_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// A shard killed mid-test fails only the requests routed to it, with
// UNAVAILABLE before the request deadline, while the other shard keeps
// serving; when it is back the service recovers without a restart.
func TestShardDownFailsOnlyItsRequestsAndRecovers(t *testing.T) {
	t.Parallel()
	topo, private := testinfra.ShardsWithPrivate(t)
	h := start(t, topo)
	ctx := context.Background()

	onDown := requestIDOn(t, topo, "shard-1", "down")
	before, err := h.grpc.PlaceOrder(ctx, placeRequest(onDown))
	if err != nil {
		t.Fatalf("placing on shard-1 while it is up: %v", err)
	}

	private.Kill()

	for i := range 3 {
		_, err := h.grpc.PlaceOrder(ctx, placeRequest(requestIDOn(t, topo, "shard-1", "while-down")))
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("place #%d on the dead shard: %v, want UNAVAILABLE (before the request deadline)", i, err)
		}
	}
	if _, err := h.grpc.GetOrder(ctx, &orderv1.GetOrderRequest{OrderNo: before.GetOrder().GetOrderNo()}); status.Code(err) != codes.Unavailable {
		t.Errorf("reading an order of the dead shard: %v, want UNAVAILABLE", err)
	}
	for i := range 5 {
		if _, err := h.grpc.PlaceOrder(ctx, placeRequest(requestIDOn(t, topo, "shard-0", "healthy"))); err != nil {
			t.Fatalf("place #%d on the healthy shard while the other is down: %v", i, err)
		}
	}
	code, body := h.do(http.MethodGet, "/readyz", "")
	checks, _ := body["checks"].(map[string]any)
	if code != http.StatusServiceUnavailable || checks["shard-0"] != "ok" || checks["shard-1"] != "unreachable" {
		t.Errorf("/readyz with shard-1 down: HTTP %d %v, want shard-0 ok and shard-1 unreachable", code, body)
	}
	// The driver's error names the shard's address; /readyz must not.
	dsn, _ := topo.DSN("shard-1")
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(cfg.Addr)
	for _, leak := range []string{cfg.Addr, ":" + port, cfg.DBName, cfg.User + ":", "tcp", ".sock"} {
		if strings.Contains(fmt.Sprint(body), leak) {
			t.Errorf("/readyz with shard-1 down shows %q: %v", leak, body)
		}
	}
	code, body = h.do(http.MethodPost, "/v1/orders", placeBody(requestIDOn(t, topo, "shard-1", "rest-down")))
	if code != http.StatusServiceUnavailable || body["code"] != float64(14) {
		t.Errorf("REST place on the dead shard: HTTP %d %v, want 503 UNAVAILABLE", code, body)
	}

	private.Start()

	testinfra.Eventually(t, 20*time.Second, func() bool {
		_, err := h.grpc.PlaceOrder(ctx, placeRequest(requestIDOn(t, topo, "shard-1", "after")))
		return err == nil
	}, "placing on shard-1 never recovered after the restart")
	got, err := h.grpc.GetOrder(ctx, &orderv1.GetOrderRequest{OrderNo: before.GetOrder().GetOrderNo()})
	if err != nil || got.GetOrder().GetStatus() != orderv1.Order_PLACED {
		t.Errorf("the order placed before the crash: %v, %v", got, err)
	}
	testinfra.Eventually(t, 10*time.Second, func() bool {
		code, _ := h.do(http.MethodGet, "/readyz", "")
		return code == http.StatusOK
	}, "/readyz never recovered")
}

// Start-up refuses a topology with a shard it cannot reach, naming it.
func TestStartRefusesAnUnreachableShard(t *testing.T) {
	t.Parallel()
	healthy := testinfra.Shards(t, 1)
	private := testinfra.StartMariaDB(t)
	dsn := testinfra.CreateDatabase(t, private.ServerDSN(), "orderflow")
	private.Kill()
	topo := shard.Topology{
		Shards: []shard.Spec{{Name: "shard-0", DSN: healthy.Shards[0].DSN}, {Name: "shard-gone", DSN: dsn}},
		Epochs: []shard.Epoch{{FirstOrderNo: 1, Shards: []string{"shard-0", "shard-gone"}}},
	}
	cfg := testConfig()
	cfg.StartupTimeout = time.Second
	_, err := newService(t, cfg, topo)
	if err == nil || !contains(err.Error(), "shard-gone") {
		t.Fatalf("service.New with an unreachable shard: %v, want an error naming shard-gone", err)
	}
}
