// Package bench holds what the Go load tools share: scratch databases with
// the schema on every shard server, the PlaceOrder write transaction run
// directly against a shard (the machine's raw limit), and closed- and
// open-loop drivers with latency percentiles.
package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/orderflow/orderflow/migrations"
	"github.com/orderflow/orderflow/shared/shard"
)

// Result is one measured phase.
type Result struct {
	Name        string  `json:"name"`
	Concurrency int     `json:"concurrency,omitempty"`
	Seconds     float64 `json:"seconds"`
	Ops         int     `json:"ops"`
	Errors      int     `json:"errors"`
	PerSecond   float64 `json:"perSecond"`
	P50Ms       float64 `json:"p50Ms"`
	P99Ms       float64 `json:"p99Ms"`
}

// Pool is the connection pool the tools use.
var Pool = shard.PoolConfig{MaxOpenConns: 256, MaxIdleConns: 256, ConnMaxLifetime: time.Hour, DialTimeout: 2 * time.Second, IOTimeout: 30 * time.Second,
	// The raw loop measures what the server can write: at saturation its
	// calls wait long for a connection, which must not count as a shard
	// that stopped answering (the services' short deadlines shed that load).
	StatementTimeout: 30 * time.Second, TxTimeout: 30 * time.Second}

// Scratch creates a fresh database with the schema on the server of each
// shard of topo's current epoch and returns a one-epoch topology over them.
// cleanup drops them.
func Scratch(ctx context.Context, topo shard.Topology, prefix string) (shard.Topology, func(), error) {
	out := shard.Topology{Epochs: []shard.Epoch{{FirstOrderNo: 1}}}
	var drops []func()
	cleanup := func() {
		for _, d := range drops {
			d()
		}
	}
	for i, name := range topo.Epochs[topo.Current()].Shards {
		dsn, _ := topo.DSN(name)
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			return out, cleanup, err
		}
		db := fmt.Sprintf("%s_%d", prefix, i)
		cfg.DBName = ""
		server, err := shard.OpenDB(cfg.FormatDSN(), Pool)
		if err != nil {
			return out, cleanup, err
		}
		for _, q := range []string{"DROP DATABASE IF EXISTS `" + db + "`", "CREATE DATABASE `" + db + "`"} {
			if _, err := server.ExecContext(ctx, q); err != nil {
				return out, cleanup, err
			}
		}
		drops = append(drops, func() {
			_, _ = server.ExecContext(context.Background(), "DROP DATABASE IF EXISTS `"+db+"`")
			_ = server.Close()
		})
		cfg.DBName = db
		scratch, err := shard.OpenDB(cfg.FormatDSN(), Pool)
		if err != nil {
			return out, cleanup, err
		}
		_, err = migrations.Up(ctx, scratch)
		_ = scratch.Close()
		if err != nil {
			return out, cleanup, err
		}
		sname := fmt.Sprintf("shard-%d", i)
		out.Shards = append(out.Shards, shard.Spec{Name: sname, DSN: cfg.FormatDSN()})
		out.Epochs[0].Shards = append(out.Epochs[0].Shards, sname)
	}
	return out, cleanup, nil
}

var hash = bytes.Repeat([]byte{7}, 32)

// PlaceTx returns an op that runs the service's PlaceOrder statements (order,
// two items, history, outbox) for order number i on shard i % n, in the same
// single round trip the service uses, with nothing around them.
func PlaceTx(pools *shard.Pools) func(ctx context.Context, i int64) error {
	names := pools.Topology().Epochs[0].Shards
	return func(ctx context.Context, i int64) error {
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
		return pools.ExecAtomic(ctx, names[i%int64(len(names))], &b)
	}
}

// Measure runs op from concurrency goroutines for warmup plus duration and
// reports the measured part. seq numbers the calls across phases.
func Measure(ctx context.Context, name string, concurrency int, warmup, duration time.Duration, seq *atomic.Int64,
	op func(ctx context.Context, i int64) error) Result {
	var mu sync.Mutex
	var latencies []time.Duration
	errs := 0
	measureFrom := time.Now().Add(warmup)
	end := measureFrom.Add(duration)
	var wg sync.WaitGroup
	for range concurrency {
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
						fmt.Fprintf(os.Stderr, "bench: %s: %v\n", name, err)
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
	r := Summarise(name, latencies, duration)
	r.Concurrency, r.Errors = concurrency, errs
	return r
}

// Summarise turns latencies observed over duration into a Result.
func Summarise(name string, latencies []time.Duration, duration time.Duration) Result {
	slices.Sort(latencies)
	return Result{Name: name, Seconds: duration.Seconds(), Ops: len(latencies),
		PerSecond: float64(len(latencies)) / duration.Seconds(),
		P50Ms:     Percentile(latencies, 0.50), P99Ms: Percentile(latencies, 0.99)}
}

// Percentile of sorted latencies, in milliseconds.
func Percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(float64(len(sorted)-1)*p)].Microseconds()) / 1000
}

// RandomID is a short random hex string for names that must not collide
// with an earlier run's.
func RandomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// FreeAddr is a loopback address with a port nothing listens on now, from
// the kernel: good enough for a benchmark tool that binds it at once; the
// harnesses that restart servers on their ports use freeport.
func FreeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer l.Close()
	return l.Addr().String()
}

// Machine describes where the run happened, and the Ps the load tool ran
// with: it shares the machine's cores with what it measures.
func Machine() map[string]any {
	return map[string]any{"cpus": runtime.NumCPU(), "gomaxprocs": runtime.GOMAXPROCS(0), "goos": runtime.GOOS, "goarch": runtime.GOARCH, "go": runtime.Version(),
		"at": time.Now().UTC().Format(time.RFC3339)}
}

// RawLimit measures the machine's raw limit for the PlaceOrder write: the
// same transaction from concurrency clients straight to scratch databases on
// the shard servers of topo (nothing downstream reads them).
func RawLimit(ctx context.Context, topo shard.Topology, concurrency int, warmup, duration time.Duration) (Result, error) {
	scratch, cleanup, err := Scratch(ctx, topo, "orderflow_rawlimit")
	defer cleanup()
	if err != nil {
		return Result{}, err
	}
	pools, err := shard.Open(scratch, Pool)
	if err != nil {
		return Result{}, err
	}
	defer pools.Close()
	var seq atomic.Int64
	return Measure(ctx, "raw transaction (direct to the shards)", concurrency, warmup, duration, &seq, PlaceTx(pools)), nil
}

// RawLimitOf is RawLimit as every load tool measures it beside its own run:
// the shards of the topology file, 32 clients, 2 s of warm-up.
func RawLimitOf(ctx context.Context, topologyFile string, duration time.Duration) (Result, error) {
	topo, err := shard.LoadTopology(topologyFile)
	if err != nil {
		return Result{}, err
	}
	return RawLimit(ctx, topo, 32, 2*time.Second, duration)
}
