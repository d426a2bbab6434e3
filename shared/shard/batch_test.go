package shard_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// A batch commits all of its statements or none, and a failed batch leaves
// no open transaction behind on the pooled connection.
func TestExecAtomic(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 1)
	cfg := testinfra.TestPool()
	cfg.MaxOpenConns, cfg.MaxIdleConns = 1, 1 // every batch reuses one connection
	pools, err := shard.Open(topo, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pools.Close()
	ctx := context.Background()
	name := topo.Shards[0].Name
	item := "INSERT INTO order_items (order_no, line_no, menu_id, name, quantity, unit_price) VALUES (?, ?, 'm', ?, 1, 1)"
	countItems := func() int {
		db, _ := pools.DB(name)
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM order_items").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	tests := []struct {
		name      string
		build     func(b *shard.Batch)
		wantErr   uint16
		wantCount int
	}{
		{name: "all statements commit", build: func(b *shard.Batch) {
			b.Add(item, 1, 1, "a")
			b.Add(item, 1, 2, "semi;colon 'quote' \\ back")
		}, wantCount: 2},
		{name: "a failing statement rolls back the earlier ones", build: func(b *shard.Batch) {
			b.Add(item, 2, 1, "kept?")
			b.Add(item, 1, 1, "duplicate")
		}, wantErr: 1062, wantCount: 2},
		{name: "the connection is clean afterwards", build: func(b *shard.Batch) {
			b.Add(item, 3, 1, "after")
		}, wantCount: 3},
	}
	for _, tc := range tests {
		var b shard.Batch
		tc.build(&b)
		err := pools.ExecAtomic(ctx, name, &b)
		var me *mysql.MySQLError
		switch {
		case tc.wantErr == 0 && err != nil:
			t.Fatalf("%s: %v", tc.name, err)
		case tc.wantErr != 0 && (!errors.As(err, &me) || me.Number != tc.wantErr):
			t.Fatalf("%s: error %v, want MySQL error %d", tc.name, err, tc.wantErr)
		}
		if n := countItems(); n != tc.wantCount {
			t.Fatalf("%s: %d rows committed, want %d", tc.name, n, tc.wantCount)
		}
	}
	// A value with SQL in it is stored as text, not executed.
	db, _ := pools.DB(name)
	var got string
	if err := db.QueryRowContext(ctx, "SELECT name FROM order_items WHERE order_no = 1 AND line_no = 2").Scan(&got); err != nil || got != "semi;colon 'quote' \\ back" {
		t.Errorf("stored %q (%v)", got, err)
	}
}

// A batch written for several callers counts once per caller in the
// shard's breaker: a group as large as BreakerFailures that finds the shard
// unreachable opens it, as that many callers on their own would, and an
// open breaker counts every caller of a group it refuses.
func TestExecAtomicForCountsEveryCallerInTheBreaker(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		calls    int
		wantOpen bool
	}{
		{name: "fewer callers than the threshold", calls: 2},
		{name: "as many callers as the threshold", calls: 3, wantOpen: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := breakerConfig()
			pools := breakerPools(t, cfg) // nothing listens: every dial is refused
			var b shard.Batch
			b.Add("DO 1")
			if err := pools.ExecAtomicFor(context.Background(), "s0", &b, tc.calls, time.Now()); !shard.IsFailure(err) {
				t.Fatalf("group of %d on an unreachable shard: %v, want a failure", tc.calls, err)
			}
			err := pools.ExecAtomic(context.Background(), "s0", &b)
			var ue *shard.UnavailableError
			if opened := errors.As(err, &ue) && ue.BreakerOpen; opened != tc.wantOpen {
				t.Fatalf("after a failed group of %d (threshold %d): %v, want breaker open %v", tc.calls, cfg.BreakerFailures, err, tc.wantOpen)
			}
			if !tc.wantOpen {
				return
			}
			before := gauge(t, pools, "orderflow_shard_breaker_rejected_total")
			_ = pools.ExecAtomicFor(context.Background(), "s0", &b, 4, time.Now())
			if got := gauge(t, pools, "orderflow_shard_breaker_rejected_total") - before; got != 4 {
				t.Errorf("the open breaker refused a group of 4: rejected_total rose by %v, want 4", got)
			}
		})
	}
}

// The statement deadline of a batch written for several callers counts
// from when the first of them asked: what they spent waiting for their turn
// is not given again. Callers that spent all of it are failed without
// trying the shard: busy (not counted by the breaker) when the shard
// answered meanwhile, else as a shard that did not answer.
func TestExecAtomicForDeadlineCountsFromTheFirstCaller(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 1)
	cfg := testinfra.TestPool()
	cfg.StatementTimeout, cfg.TxTimeout = 2*time.Second, 2*time.Second
	open := func() *shard.Pools {
		pools, err := shard.Open(topo, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pools.Close() })
		return pools
	}
	name := topo.Shards[0].Name
	ctx := context.Background()
	var insert shard.Batch
	insert.Add("INSERT INTO order_items (order_no, line_no, menu_id, name, quantity, unit_price) VALUES (1, 1, 'm', 'n', 1, 1)")
	inserted := func(pools *shard.Pools) bool {
		db, _ := pools.DB(name)
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM order_items").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	}

	t.Run("what is left of the deadline", func(t *testing.T) {
		pools := open()
		var sleep shard.Batch
		sleep.Add("DO SLEEP(1.5)")
		start := time.Now()
		err := pools.ExecAtomicFor(ctx, name, &sleep, 2, start.Add(-1800*time.Millisecond))
		if elapsed := time.Since(start); !shard.IsFailure(err) || elapsed > time.Second {
			t.Errorf("a 1.5 s batch with 0.2 s of the deadline left: %v after %s, want no answer well before the sleep ends", err, elapsed)
		}
	})
	t.Run("spent waiting while the shard answered", func(t *testing.T) {
		pools := open()
		since := time.Now().Add(-3 * time.Second)
		var ping shard.Batch
		ping.Add("DO 1")
		if err := pools.ExecAtomic(ctx, name, &ping); err != nil {
			t.Fatal(err)
		}
		for i := range int(cfg.WithDefaults().BreakerFailures) + 1 {
			err := pools.ExecAtomicFor(ctx, name, &insert, 3, since)
			var ue *shard.UnavailableError
			if !errors.As(err, &ue) || !ue.Busy || ue.RetryAfter < time.Second || shard.IsFailure(err) {
				t.Fatalf("group %d that waited out its deadline: %v, want busy UNAVAILABLE with a retry-after hint", i, err)
			}
		}
		if inserted(pools) {
			t.Error("a group that waited out its deadline was written")
		}
		if err := pools.ExecAtomic(ctx, name, &ping); err != nil {
			t.Errorf("after the busy groups: %v, want the breaker still closed", err)
		}
	})
	t.Run("spent waiting while the shard answered nothing", func(t *testing.T) {
		pools := open()
		err := pools.ExecAtomicFor(ctx, name, &insert, 3, time.Now().Add(-3*time.Second))
		var ue *shard.UnavailableError
		if !shard.IsFailure(err) || !errors.As(err, &ue) || ue.Busy {
			t.Errorf("group that waited out its deadline on a silent shard: %v, want a failure", err)
		}
		if inserted(pools) {
			t.Error("a group that waited out its deadline was written")
		}
	})
}
