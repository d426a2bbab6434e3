// Command placebench measures PlaceOrder against a running order-command
// service over REST and over gRPC, and in the same run the raw write limit of
// the machine: the same transaction (order, two items, a status-history row,
// an outbox row) executed directly against the shards by a minimal loop.
//
//	go run ./loadtest/cmd/placebench -topology .state/topology.json
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/orderflow/orderflow/migrations"
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
}

// result is one measured phase.
type result struct {
	Name        string  `json:"name"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	Ops         int     `json:"ops"`
	Errors      int     `json:"errors"`
	PerSecond   float64 `json:"perSecond"`
	P50Ms       float64 `json:"p50Ms"`
	P99Ms       float64 `json:"p99Ms"`
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
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "placebench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	topo, err := shard.LoadTopology(o.topology)
	if err != nil {
		return err
	}
	raw, cleanup, err := rawLimit(ctx, topo)
	if err != nil {
		return err
	}
	defer cleanup()
	conn, err := grpc.NewClient(o.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := orderv1.NewOrderCommandServiceClient(conn)
	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency * 2, MaxConnsPerHost: o.concurrency * 2}, Timeout: 10 * time.Second}

	run := runID()
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
			return restPlace(ctx, httpClient, o.rest, fmt.Sprintf("%s-r-%d", run, i))
		}},
	}
	// Phases are interleaved round by round, so that a noisy minute on a
	// shared machine affects every phase alike.
	all := make([][]result, len(phases))
	// One sequence for the whole run: order numbers and request ids stay
	// unique across rounds.
	var seq atomic.Int64
	for round := range o.rounds {
		for i, p := range phases {
			fmt.Fprintf(os.Stderr, "placebench: round %d/%d: %s, %d clients, %s\n", round+1, o.rounds, p.name, o.concurrency, o.duration)
			all[i] = append(all[i], measure(ctx, p.name, o, &seq, p.op))
		}
	}
	results := make([]result, len(phases))
	for i, rs := range all {
		slices.SortFunc(rs, func(a, b result) int { return int(a.PerSecond - b.PerSecond) })
		results[i] = rs[len(rs)/2]
	}
	report(os.Stdout, o, results)
	if o.out != "" {
		data, _ := json.MarshalIndent(map[string]any{"machine": machine(), "median": results, "rounds": all}, "", "  ")
		if err := os.WriteFile(o.out, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func runID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "bench-" + hex.EncodeToString(b)
}

func placeRequest(requestID string) *orderv1.PlaceOrderRequest {
	return &orderv1.PlaceOrderRequest{
		RequestId: requestID, UserId: "user-42", ShopId: "shop-7", DeliveryAddress: "1 Teheran-ro, Gangnam-gu, Seoul",
		Items: []*orderv1.OrderItem{
			{MenuId: "menu-1", Name: "Bibimbap", Quantity: 2, UnitPrice: 9000},
			{MenuId: "menu-2", Name: "Barley tea", Quantity: 1, UnitPrice: 1500},
		},
	}
}

func restPlace(ctx context.Context, c *http.Client, base, requestID string) error {
	body := `{"requestId":"` + requestID + `","userId":"user-42","shopId":"shop-7","deliveryAddress":"1 Teheran-ro, Gangnam-gu, Seoul",` +
		`"items":[{"menuId":"menu-1","name":"Bibimbap","quantity":2,"unitPrice":"9000"},{"menuId":"menu-2","name":"Barley tea","quantity":1,"unitPrice":"1500"}]}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/orders", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
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

// measure runs op from o.concurrency goroutines for warm-up plus duration
// and reports the measured part.
func measure(ctx context.Context, name string, o options, seq *atomic.Int64, op func(ctx context.Context, i int64) error) result {
	var mu sync.Mutex
	var latencies []time.Duration
	errs := 0
	start := time.Now()
	measureFrom := start.Add(o.warmup)
	end := measureFrom.Add(o.duration)
	var wg sync.WaitGroup
	for range o.concurrency {
		wg.Go(func() {
			local := make([]time.Duration, 0, 4096)
			localErrs := 0
			for {
				t0 := time.Now()
				if t0.After(end) {
					break
				}
				err := op(ctx, seq.Add(1))
				if t0.Before(measureFrom) {
					continue
				}
				if err != nil {
					if localErrs == 0 {
						fmt.Fprintf(os.Stderr, "placebench: %s: %v\n", name, err)
					}
					localErrs++
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, local...)
			errs += localErrs
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return float64(latencies[int(float64(len(latencies)-1)*p)].Microseconds()) / 1000
	}
	return result{Name: name, Concurrency: o.concurrency, Seconds: o.duration.Seconds(), Ops: len(latencies), Errors: errs,
		PerSecond: float64(len(latencies)) / o.duration.Seconds(), P50Ms: pct(0.50), P99Ms: pct(0.99)}
}

// rawLimit prepares a scratch database with the schema on every shard server
// and returns an op that runs the service's PlaceOrder transaction shape on
// the shard orderNo % n, with nothing else around it.
func rawLimit(ctx context.Context, topo shard.Topology) (func(ctx context.Context, i int64) error, func(), error) {
	pool := shard.PoolConfig{MaxOpenConns: 256, MaxIdleConns: 256, ConnMaxLifetime: time.Hour, DialTimeout: 2 * time.Second, IOTimeout: 10 * time.Second}
	shards := topo.Epochs[topo.Current()].Shards
	var dbs []*sql.DB
	var servers []*sql.DB
	var names []string
	cleanup := func() {
		for i, s := range servers {
			_, _ = s.ExecContext(context.Background(), "DROP DATABASE IF EXISTS `"+names[i]+"`")
			_ = s.Close()
		}
		for _, db := range dbs {
			_ = db.Close()
		}
	}
	for i, name := range shards {
		dsn, _ := topo.DSN(name)
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			return nil, cleanup, err
		}
		scratch := fmt.Sprintf("orderflow_rawbench_%d", i)
		cfg.DBName = ""
		server, err := shard.OpenDB(cfg.FormatDSN(), pool)
		if err != nil {
			return nil, cleanup, err
		}
		servers = append(servers, server)
		names = append(names, scratch)
		if _, err := server.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+scratch+"`"); err != nil {
			return nil, cleanup, err
		}
		if _, err := server.ExecContext(ctx, "CREATE DATABASE `"+scratch+"`"); err != nil {
			return nil, cleanup, err
		}
		cfg.DBName = scratch
		db, err := shard.OpenDB(cfg.FormatDSN(), pool)
		if err != nil {
			return nil, cleanup, err
		}
		dbs = append(dbs, db)
		if _, err := migrations.Up(ctx, db); err != nil {
			return nil, cleanup, err
		}
	}
	scratchTopo := shard.Topology{Epochs: []shard.Epoch{{FirstOrderNo: 1}}}
	for i := range dbs {
		name := fmt.Sprintf("raw-%d", i)
		dsn, _ := topo.DSN(shards[i])
		cfg, _ := mysql.ParseDSN(dsn)
		cfg.DBName = names[i]
		scratchTopo.Shards = append(scratchTopo.Shards, shard.Spec{Name: name, DSN: cfg.FormatDSN()})
		scratchTopo.Epochs[0].Shards = append(scratchTopo.Epochs[0].Shards, name)
	}
	pools, err := shard.Open(scratchTopo, pool)
	if err != nil {
		return nil, cleanup, err
	}
	hash := bytes.Repeat([]byte{7}, 32)
	// The same statements the service sends for PlaceOrder, in the same
	// single round trip (shard.Batch), with nothing around them.
	op := func(ctx context.Context, i int64) error {
		name := scratchTopo.Epochs[0].Shards[i%int64(len(dbs))]
		now := time.Now().UTC()
		var b shard.Batch
		b.Add(`INSERT INTO orders (order_no, request_id, request_hash, user_id, shop_id, status,
			total_amount, delivery_address, cancel_reason, version, placed_at, updated_at)
			VALUES (?, ?, ?, 'user-42', 'shop-7', 'PLACED', 19500, '1 Teheran-ro, Gangnam-gu, Seoul', NULL, 1, ?, ?)`,
			i, fmt.Sprintf("raw-%d", i), hash, now, now)
		b.Add(`INSERT INTO order_items (order_no, line_no, menu_id, name, quantity, unit_price)
			VALUES (?, 1, 'menu-1', 'Bibimbap', 2, 9000), (?, 2, 'menu-2', 'Barley tea', 1, 1500)`, i, i)
		b.Add("INSERT INTO order_status_history (order_no, version, status, changed_at) VALUES (?, 1, 'PLACED', ?)", i, now)
		b.Add(`INSERT INTO outbox (event_id, event_type, order_no, order_version, occurred_at, traceparent)
			VALUES (?, 'OrderPlaced', ?, 1, ?, '')`, fmt.Sprintf("raw-%d", i), i, now)
		return pools.ExecAtomic(ctx, name, &b)
	}
	return op, func() { _ = pools.Close(); cleanup() }, nil
}

func machine() map[string]any {
	return map[string]any{"cpus": runtime.NumCPU(), "goos": runtime.GOOS, "goarch": runtime.GOARCH, "go": runtime.Version(), "at": time.Now().UTC().Format(time.RFC3339)}
}

func report(w io.Writer, o options, results []result) {
	fmt.Fprintf(w, "| phase | clients | orders/s | p50 ms | p99 ms | errors | vs raw |\n|---|---|---|---|---|---|---|\n")
	raw := results[0].PerSecond
	for _, r := range results {
		fmt.Fprintf(w, "| %s | %d | %.0f | %.1f | %.1f | %d | %.0f %% |\n", r.Name, r.Concurrency, r.PerSecond, r.P50Ms, r.P99Ms, r.Errors, 100*r.PerSecond/raw)
	}
}
