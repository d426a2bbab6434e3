package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/orderflow/orderflow/services/order-command/internal/service"
	"github.com/orderflow/orderflow/shared/auth"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// harness is a running order-command service on its own shards.
type harness struct {
	t     *testing.T
	topo  shard.Topology
	clock *testinfra.ManualClock
	base  string
	grpc  orderv1.OrderCommandServiceClient
	http  *http.Client
}

func testConfig() service.Config {
	return service.Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", LogLevel: "info",
		Shard:            testinfra.TestPool(),
		OrderNoBlockSize: 50, CancelWindow: 30 * 24 * time.Hour, MaxBodyBytes: 64 << 10,
		RequestTimeout: 3 * time.Second, StartupTimeout: 10 * time.Second, ShutdownTimeout: 5 * time.Second,
		// These tests are about orders, not callers: tokens are checked by
		// the auth tests (auth_test.go, tests/auth_e2e_test.go).
		Auth: auth.Settings{Disabled: true},
	}
}

// start runs the service over topo until the test ends, and waits until it
// reports ready.
func start(t *testing.T, topo shard.Topology) *harness {
	t.Helper()
	return startWith(t, topo, testConfig())
}

// startWith is start with a given configuration.
func startWith(t *testing.T, topo shard.Topology, cfg service.Config) *harness {
	t.Helper()
	clock := testinfra.NewManualClock(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	svc, _ := testinfra.RunService(t, func(ctx context.Context) (*service.Service, error) {
		return service.New(ctx, cfg, topo, logger, clock)
	})
	conn, err := grpc.NewClient(svc.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	h := &harness{t: t, topo: topo, clock: clock, base: "http://" + svc.HTTPAddr(),
		grpc: orderv1.NewOrderCommandServiceClient(conn), http: &http.Client{Timeout: 10 * time.Second}}
	testinfra.Eventually(t, 10*time.Second, func() bool {
		code, _ := h.do(http.MethodGet, "/readyz", "")
		return code == http.StatusOK
	}, "service never became ready")
	return h
}

// do sends a request and returns the status code and decoded JSON body.
func (h *harness) do(method, path, body string) (int, map[string]any) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.base+path, bytes.NewBufferString(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.http.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			h.t.Fatalf("%s %s: response is not JSON (%v): %s", method, path, err, raw)
		}
	}
	return resp.StatusCode, out
}

// requestIDOn returns a fresh request id that the topology places on shard.
func requestIDOn(t *testing.T, topo shard.Topology, shardName, prefix string) string {
	t.Helper()
	for i := range 10000 {
		id := prefix + "-" + testinfra.UniqueName(t, "r")[:8] + "-" + itoa(i)
		if topo.PlaceRequest(id).Shard == shardName {
			return id
		}
	}
	t.Fatalf("no request id places on %s", shardName)
	return ""
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// count runs a COUNT(*) query on every shard of topo and sums the results.
func count(t *testing.T, topo shard.Topology, query string, args ...any) int {
	t.Helper()
	total := 0
	for _, s := range topo.Shards {
		var n int
		if err := testinfra.DB(t, s.DSN).QueryRow(query, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %s: %v", s.Name, query, err)
		}
		total += n
	}
	return total
}

// orderField digs a field out of {"order":{...}}.
func orderField(body map[string]any, name string) any {
	o, _ := body["order"].(map[string]any)
	return o[name]
}

func violations(body map[string]any) []string {
	var fields []string
	details, _ := body["details"].([]any)
	for _, d := range details {
		dm, _ := d.(map[string]any)
		fvs, _ := dm["fieldViolations"].([]any)
		for _, fv := range fvs {
			fm, _ := fv.(map[string]any)
			if f, ok := fm["field"].(string); ok {
				fields = append(fields, f)
			}
		}
	}
	return fields
}

var errNoOrder = errors.New("no order in response")

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("%q is not a number: %v", s, err)
	}
	return n
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newService(t *testing.T, cfg service.Config, topo shard.Topology) (*service.Service, error) {
	t.Helper()
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	return service.New(context.Background(), cfg, topo, logger, testinfra.NewManualClock(time.Now()))
}

func contains(s, sub string) bool { return bytes.Contains([]byte(s), []byte(sub)) }
