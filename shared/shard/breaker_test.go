package shard_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// breakerPools opens pools over one shard that is never dialled: the calls
// under test bring their own outcome.
func breakerPools(t *testing.T, cfg shard.PoolConfig) *shard.Pools {
	t.Helper()
	topo := shard.Topology{
		Shards: []shard.Spec{{Name: "s0", DSN: "root@tcp(127.0.0.1:1)/orderflow"}},
		Epochs: []shard.Epoch{{FirstOrderNo: 1, Shards: []string{"s0"}}},
	}
	pools, err := shard.Open(topo, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pools.Close() })
	return pools
}

func breakerConfig() shard.PoolConfig {
	cfg := testinfra.TestPool()
	cfg.StatementTimeout = 20 * time.Millisecond
	cfg.TxTimeout = 20 * time.Millisecond
	cfg.BreakerFailures = 3
	cfg.BreakerOpenTimeout = time.Hour
	return cfg
}

// Only errors that mean the shard cannot be reached or did not answer in
// time count against its breaker; answers from a live server, business
// errors and callers giving up do not, however many there are.
func TestBreakerCountsOnlyUnreachableOrHungShards(t *testing.T) {
	t.Parallel()
	hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	tests := []struct {
		name string
		// ctx is the caller's context; nil means context.Background().
		ctx  func() (context.Context, context.CancelFunc)
		call func(ctx context.Context) error
		// failure: the error Is ErrUnavailable and counts; after
		// BreakerFailures of them the breaker opens.
		failure bool
	}{
		{name: "answered", call: func(context.Context) error { return nil }},
		{name: "connection refused", failure: true, call: func(context.Context) error {
			return &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
		}},
		{name: "connection dropped mid-statement", failure: true, call: func(context.Context) error {
			return fmt.Errorf("reading order: %w", mysql.ErrInvalidConn)
		}},
		{name: "bad connection", failure: true, call: func(context.Context) error { return driver.ErrBadConn }},
		{name: "server shutting down", failure: true, call: func(context.Context) error {
			return &mysql.MySQLError{Number: 1053, Message: "Server shutdown in progress"}
		}},
		{name: "too many connections", failure: true, call: func(context.Context) error {
			return &mysql.MySQLError{Number: 1040, Message: "Too many connections"}
		}},
		{name: "no answer within the statement timeout", failure: true, call: hang},
		{name: "duplicate key", call: func(context.Context) error {
			return &mysql.MySQLError{Number: 1062, Message: "Duplicate entry 'r-1' for key 'uq_orders_request_id'"}
		}},
		{name: "lock wait timeout", call: func(context.Context) error {
			return &mysql.MySQLError{Number: 1205, Message: "Lock wait timeout exceeded"}
		}},
		{name: "syntax error", call: func(context.Context) error {
			return &mysql.MySQLError{Number: 1064, Message: "You have an error in your SQL syntax"}
		}},
		{name: "no rows", call: func(context.Context) error { return sql.ErrNoRows }},
		{name: "business rule", call: func(context.Context) error { return errors.New("order not found") }},
		{name: "caller cancelled", call: hang, ctx: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}},
		{name: "caller's own shorter deadline", call: hang, ctx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Millisecond)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := breakerConfig()
			pools := breakerPools(t, cfg)
			for i := range int(cfg.BreakerFailures) + 2 {
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if tc.ctx != nil {
					ctx, cancel = tc.ctx()
				}
				var ran atomic.Bool
				start := time.Now()
				err := pools.Call(ctx, "s0", func(ctx context.Context) error { ran.Store(true); return tc.call(ctx) })
				cancel()
				elapsed := time.Since(start)
				opened := i >= int(cfg.BreakerFailures)
				switch {
				case tc.failure && opened:
					var ue *shard.UnavailableError
					if ran.Load() || !errors.As(err, &ue) || !ue.BreakerOpen || ue.RetryAfter < time.Second || ue.Shard != "s0" {
						t.Fatalf("call %d after %d failures: ran=%v err=%#v, want refused at once by the open breaker with a retry-after hint",
							i, cfg.BreakerFailures, ran.Load(), err)
					}
				case tc.failure:
					if !errors.Is(err, shard.ErrUnavailable) || !shard.IsFailure(err) {
						t.Fatalf("call %d: %v, want an error that Is ErrUnavailable", i, err)
					}
					if elapsed > time.Second {
						t.Fatalf("call %d took %s, want the statement timeout (%s)", i, elapsed, cfg.StatementTimeout)
					}
				default:
					if !ran.Load() {
						t.Fatalf("call %d was refused (%v): %q must not open the breaker", i, err, tc.name)
					}
					if errors.Is(err, shard.ErrUnavailable) {
						t.Fatalf("call %d: %v is classified unavailable", i, err)
					}
				}
			}
			want := 0.0
			if tc.failure {
				want = 2
			}
			if got := gauge(t, pools, "orderflow_shard_breaker_state"); got != want {
				t.Errorf("orderflow_shard_breaker_state = %v, want %v", got, want)
			}
		})
	}
}

// An open breaker lets a probe through after its open timeout; a probe that
// succeeds closes it, so the shard is back in without a restart.
func TestBreakerProbesTheShardBackIn(t *testing.T) {
	t.Parallel()
	cfg := breakerConfig()
	cfg.BreakerOpenTimeout = 50 * time.Millisecond
	pools := breakerPools(t, cfg)
	ctx := context.Background()
	var down atomic.Bool
	down.Store(true)
	call := func(ctx context.Context) error {
		if down.Load() {
			return driver.ErrBadConn
		}
		return nil
	}
	for range cfg.BreakerFailures {
		_ = pools.Call(ctx, "s0", call)
	}
	var ue *shard.UnavailableError
	if err := pools.Call(ctx, "s0", call); !errors.As(err, &ue) || !ue.BreakerOpen {
		t.Fatalf("after %d failures: %v, want the breaker open", cfg.BreakerFailures, err)
	}
	if got := gauge(t, pools, "orderflow_shard_up"); got != 0 {
		t.Errorf("orderflow_shard_up = %v while the breaker is open, want 0", got)
	}
	down.Store(false)
	testinfra.Eventually(t, 5*time.Second, func() bool { return pools.Call(ctx, "s0", call) == nil },
		"the breaker never let a probe through")
	if got := gauge(t, pools, "orderflow_shard_breaker_state"); got != 0 {
		t.Errorf("orderflow_shard_breaker_state = %v after a good probe, want 0 (closed)", got)
	}
	if got := gauge(t, pools, "orderflow_shard_up"); got != 1 {
		t.Errorf("orderflow_shard_up = %v after a good probe, want 1", got)
	}
}

// The fault-handling settings default when zero and refuse nonsense.
func TestPoolConfigFaultSettings(t *testing.T) {
	t.Parallel()
	d := shard.PoolConfig{MaxOpenConns: 1}.WithDefaults()
	if d.StatementTimeout != shard.DefaultStatementTimeout || d.TxTimeout != shard.DefaultTxTimeout ||
		d.BreakerFailures != shard.DefaultBreakerFailures || d.BreakerOpenTimeout != shard.DefaultBreakerOpenTimeout ||
		d.BreakerProbes != shard.DefaultBreakerProbes || d.BreakerQuiet != shard.DefaultBreakerQuiet {
		t.Errorf("defaults: %+v", d)
	}
	if d.StatementTimeout >= time.Second || d.TxTimeout >= time.Second {
		t.Errorf("the command path must answer within a second: statement %s, transaction %s", d.StatementTimeout, d.TxTimeout)
	}
	tests := []struct {
		name   string
		change func(c *shard.PoolConfig)
		want   string
	}{
		{name: "negative statement timeout", change: func(c *shard.PoolConfig) { c.StatementTimeout = -time.Second }, want: "STATEMENT_TIMEOUT"},
		{name: "negative open timeout", change: func(c *shard.PoolConfig) { c.BreakerOpenTimeout = -time.Second }, want: "BREAKER_OPEN_TIMEOUT"},
		{name: "negative quiet period", change: func(c *shard.PoolConfig) { c.BreakerQuiet = -time.Second }, want: "BREAKER_QUIET"},
		{name: "transaction shorter than a statement", change: func(c *shard.PoolConfig) {
			c.StatementTimeout, c.TxTimeout = time.Second, 500*time.Millisecond
		}, want: "TX_TIMEOUT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := testinfra.TestPool()
			tc.change(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate: %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

// gauge reads the s0 sample of one of the pools' metrics.
func gauge(t *testing.T, pools *shard.Pools, name string, shardName ...string) float64 {
	sn := "s0"
	if len(shardName) > 0 {
		sn = shardName[0]
	}
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(pools.Collector())
	v, ok := testinfra.MetricValue(t, reg, name, map[string]string{"shard": sn})
	if !ok {
		t.Fatalf("no %s{shard=%q}", name, sn)
	}
	return v
}

// A pool whose every connection is in use while the shard keeps answering
// is local queueing, not a shard that stopped answering: the calls that wait
// past their deadline fail as busy UNAVAILABLE with a retry-after hint, and
// however many there are, the shard's breaker stays closed, so a loaded
// shard is not shed. (A shard that answers nothing while calls wait is a
// hung one: order-command's and the relay's hung-shard tests.)
func TestBusyPoolDoesNotOpenTheBreaker(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 1)
	cfg := breakerConfig()
	cfg.MaxOpenConns, cfg.MaxIdleConns = 1, 1
	cfg.StatementTimeout, cfg.TxTimeout = 100*time.Millisecond, 100*time.Millisecond
	pools, err := shard.Open(topo, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pools.Close() })
	name := topo.Shards[0].Name
	ctx := context.Background()
	held, err := pools.Conn(ctx, name) // the pool's only connection
	if err != nil {
		t.Fatal(err)
	}
	// The holder keeps getting answers from the shard while the others wait.
	stop := make(chan struct{})
	pinging := make(chan struct{})
	go func() {
		defer close(pinging)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = pools.Call(ctx, name, func(ctx context.Context) error { return held.PingContext(ctx) })
			}
		}
	}()
	calls := []struct {
		name string
		call func() error
	}{
		{"InTx", func() error {
			return pools.InTx(ctx, name, sql.LevelDefault, func(ctx context.Context, tx *sql.Tx) error { return nil })
		}},
		{"ExecAtomic", func() error {
			var b shard.Batch
			b.Add("SELECT 1")
			return pools.ExecAtomic(ctx, name, &b)
		}},
	}
	for range 2 * cfg.BreakerFailures {
		for _, c := range calls {
			err := c.call()
			var ue *shard.UnavailableError
			if !errors.As(err, &ue) || !ue.Busy || ue.BreakerOpen || ue.RetryAfter < time.Second {
				t.Fatalf("%s with every connection in use: %v (%+v), want a busy UNAVAILABLE with a retry-after", c.name, err, ue)
			}
		}
	}
	if got := gauge(t, pools, "orderflow_shard_breaker_state", name); got != 0 {
		t.Errorf("orderflow_shard_breaker_state = %v after busy calls, want 0 (closed)", got)
	}
	if got := gauge(t, pools, "orderflow_shard_up", name); got != 1 {
		t.Errorf("orderflow_shard_up = %v after busy calls, want 1", got)
	}
	close(stop)
	<-pinging
	_ = held.Close()
	if err := calls[0].call(); err != nil {
		t.Fatalf("InTx once a connection is free: %v", err)
	}
}

// Failures right after the shard answered do not open its breaker (a loaded
// shard stalling for a moment): it opens only once the shard has answered
// nothing for BreakerQuiet.
func TestBreakerWaitsForTheQuietPeriod(t *testing.T) {
	t.Parallel()
	cfg := breakerConfig()
	cfg.BreakerQuiet = 300 * time.Millisecond
	pools := breakerPools(t, cfg)
	ctx := context.Background()
	if err := pools.Call(ctx, "s0", func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	answered := time.Now()
	fail := func(context.Context) error { return driver.ErrBadConn }
	for range 3 * cfg.BreakerFailures {
		var ue *shard.UnavailableError
		if err := pools.Call(ctx, "s0", fail); errors.As(err, &ue) && ue.BreakerOpen {
			if since := time.Since(answered); since < cfg.BreakerQuiet {
				t.Fatalf("the breaker opened %s after the shard's last answer, before the quiet period of %s", since, cfg.BreakerQuiet)
			}
			return
		}
	}
	testinfra.Eventually(t, 5*time.Second, func() bool {
		var ue *shard.UnavailableError
		return errors.As(pools.Call(ctx, "s0", fail), &ue) && ue.BreakerOpen
	}, "the breaker never opened after the quiet period")
	if since := time.Since(answered); since < cfg.BreakerQuiet {
		t.Fatalf("the breaker opened %s after the shard's last answer, before the quiet period", since)
	}
}
