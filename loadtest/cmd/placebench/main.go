// Command placebench measures PlaceOrder against a running order-command
// service over REST and over gRPC, and in the same run the raw write limit of
// the machine: the same transaction (order, two items, a status-history row,
// an outbox row) executed directly against the shards by a minimal loop.
//
//	go run ./loadtest/cmd/placebench -topology .state/topology.json
//
// With -base <rev> it compares two builds instead (A/B): order-command built
// from rev and from the working tree, each started on free ports against
// scratch databases of the same shard servers (see runAB).
//
//	go run ./loadtest/cmd/placebench -base main -duration 15s -rounds 5
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/orderflow/orderflow/loadtest/internal/bench"
	"github.com/orderflow/orderflow/loadtest/internal/orderapi"
	"github.com/orderflow/orderflow/shared/authclient"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/shard"
)

type options struct {
	topology    string
	rest        string
	grpc        string
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	rounds      int
	out         string
	base        string
	aEnv        []string
	logDir      string
	// authKey signs the token of the benchmark's one user (user-42).
	authKey string
}

func main() {
	var o options
	flag.StringVar(&o.topology, "topology", ".state/topology.json", "topology file of the shards")
	flag.StringVar(&o.rest, "rest", "http://127.0.0.1:8080", "order-command REST base URL")
	flag.StringVar(&o.grpc, "grpc", "127.0.0.1:9090", "order-command gRPC address")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per phase")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured time before each phase")
	flag.IntVar(&o.concurrency, "concurrency", 32, "concurrent clients")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of all phases, interleaved; the median round of each phase is reported")
	flag.StringVar(&o.out, "out", "", "write the results as JSON to this file too")
	flag.StringVar(&o.base, "base", "", "A/B mode: the git revision of build A; build B is the working tree (run from the repository root)")
	flag.StringVar(&o.authKey, "auth-key", orderapi.DefaultKeyFile, orderapi.KeyFlagUsage+" (A/B mode generates a key of its own)")
	flag.Func("a-env", "A/B mode: an extra KEY=VALUE of build A's environment (repeatable), e.g. -base HEAD -a-env ORDERFLOW_AUTH_DISABLED=true measures what authentication costs", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("want KEY=VALUE, got %q", v)
		}
		o.aEnv = append(o.aEnv, v)
		return nil
	})
	flag.StringVar(&o.logDir, "logs", "", "A/B mode: where the two builds write their logs (default: the run's temporary directory)")
	flag.Parse()
	runMode := run
	if o.base != "" {
		runMode = runAB
	}
	if err := runMode(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "placebench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	topo, err := shard.LoadTopology(o.topology)
	if err != nil {
		return err
	}
	scratch, cleanup, err := bench.Scratch(ctx, topo, "orderflow_rawbench")
	defer cleanup()
	if err != nil {
		return err
	}
	pools, err := shard.Open(scratch, bench.Pool)
	if err != nil {
		return err
	}
	defer pools.Close()
	raw := bench.PlaceTx(pools)
	tokens, err := orderapi.Tokens(o.authKey)
	if err != nil {
		return err
	}
	token, err := benchToken(tokens)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(o.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(authclient.Bearer(token)))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := orderv1.NewOrderCommandServiceClient(conn)
	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency * 2, MaxConnsPerHost: o.concurrency * 2}, Timeout: 10 * time.Second}

	run := "bench-" + bench.RandomID()
	phases := []struct {
		name string
		op   func(ctx context.Context, i int64) error
	}{
		{"raw transaction (direct to the shards)", raw},
		{"PlaceOrder over gRPC", func(ctx context.Context, i int64) error {
			_, err := client.PlaceOrder(ctx, placeRequest(fmt.Sprintf("%s-g-%d", run, i)))
			return err
		}},
		{"PlaceOrder over REST", func(ctx context.Context, i int64) error {
			return restPlace(ctx, httpClient, o.rest, token, fmt.Sprintf("%s-r-%d", run, i))
		}},
	}
	// Phases are interleaved round by round, so that a noisy minute on a
	// shared machine affects every phase alike.
	all := make([][]bench.Result, len(phases))
	// One sequence for the whole run: order numbers and request ids stay
	// unique across rounds.
	var seq atomic.Int64
	for round := range o.rounds {
		for i, p := range phases {
			fmt.Fprintf(os.Stderr, "placebench: round %d/%d: %s, %d clients, %s\n", round+1, o.rounds, p.name, o.concurrency, o.duration)
			all[i] = append(all[i], bench.Measure(ctx, p.name, o.concurrency, o.warmup, o.duration, &seq, p.op))
		}
	}
	results := make([]bench.Result, len(phases))
	for i, rs := range all {
		slices.SortFunc(rs, func(a, b bench.Result) int { return int(a.PerSecond - b.PerSecond) })
		results[i] = rs[len(rs)/2]
	}
	report(os.Stdout, results)
	if o.out != "" {
		data, _ := json.MarshalIndent(map[string]any{"machine": bench.Machine(), "median": results, "rounds": all}, "", "  ")
		if err := os.WriteFile(o.out, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// benchUser places every order of the benchmark: one caller, so the
// service must run with a PlaceOrder limit above the measured rate (the
// Makefile's bench targets set one), or the limiter is what is measured.
const benchUser = "user-42"

// benchToken is benchUser's token ("" without a minter).
func benchToken(tokens *authclient.Minter) (string, error) {
	if tokens == nil {
		return "", nil
	}
	return tokens.User(benchUser)
}

func placeRequest(requestID string) *orderv1.PlaceOrderRequest {
	return &orderv1.PlaceOrderRequest{
		RequestId: requestID, UserId: benchUser, ShopId: "shop-7", DeliveryAddress: "1 Teheran-ro, Gangnam-gu, Seoul",
		Items: []*orderv1.OrderItem{
			{MenuId: "menu-1", Name: "Bibimbap", Quantity: 2, UnitPrice: 9000},
			{MenuId: "menu-2", Name: "Barley tea", Quantity: 1, UnitPrice: 1500},
		},
	}
}

func restPlace(ctx context.Context, c *http.Client, base, token, requestID string) error {
	body := `{"requestId":"` + requestID + `","userId":"` + benchUser + `","shopId":"shop-7","deliveryAddress":"1 Teheran-ro, Gangnam-gu, Seoul",` +
		`"items":[{"menuId":"menu-1","name":"Bibimbap","quantity":2,"unitPrice":"9000"},{"menuId":"menu-2","name":"Barley tea","quantity":1,"unitPrice":"1500"}]}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/orders", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	authclient.SetBearer(req, token)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

func report(w io.Writer, results []bench.Result) {
	fmt.Fprintf(w, "| phase | clients | orders/s | p50 ms | p99 ms | errors | vs raw |\n|---|---|---|---|---|---|---|\n")
	raw := results[0].PerSecond
	for _, r := range results {
		fmt.Fprintf(w, "| %s | %d | %.0f | %.1f | %.1f | %d | %.0f %% |\n", r.Name, r.Concurrency, r.PerSecond, r.P50Ms, r.P99Ms, r.Errors, 100*r.PerSecond/raw)
	}
}
