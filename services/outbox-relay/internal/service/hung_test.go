package service_test

import (
	"testing"
	"time"

	"github.com/orderflow/orderflow/shared/testinfra"
)

// A shard that stops answering (SIGSTOP) does not hold up the others: the
// relay notices it within its statement timeout, opens the shard's breaker,
// keeps publishing the healthy shard's rows meanwhile, and takes the hung
// shard up again once it answers, publishing what was written there since.
func TestHungShardDoesNotHoldTheOthers(t *testing.T) {
	t.Parallel()
	topo, private := testinfra.ShardsWithPrivate(t)
	hungDSN, healthyDSN := topo.Shards[1].DSN, topo.Shards[0].DSN
	topic := testinfra.KafkaTopic(t, 3)
	c := consume(t, testinfra.KafkaBrokers(), topic)
	cfg := testConfig(topic, testinfra.KafkaBrokers())
	cfg.Shard = testinfra.WithHungShardDeadlines(cfg.Shard)
	svc := startRelay(t, cfg, topo)

	want := writeEvents(t, healthyDSN, 1, 20, 1)
	for id, e := range writeEvents(t, hungDSN, 100001, 20, 1) {
		want[id] = e
	}
	testinfra.Eventually(t, 30*time.Second, func() bool {
		return published(t, healthyDSN) == 20 && published(t, hungDSN) == 20
	}, "rows before the hang not published")

	private.Stop()
	t.Cleanup(private.Continue) // a failed test must not leave a frozen server behind its cleanup

	testinfra.Eventually(t, 20*time.Second, func() bool {
		return testinfra.MetricSum(t, svc.AdminHTTPAddr(), `orderflow_shard_breaker_state{shard="shard-1"}`) > 0
	}, "the relay never opened the hung shard's breaker")
	// The healthy shard keeps flowing, round after round, while the other
	// one hangs.
	for round := range 3 {
		for id, e := range writeEvents(t, healthyDSN, int64(1000*(round+1)), 30, 1) {
			want[id] = e
		}
		wantPublished := 20 + 30*(round+1)
		testinfra.Eventually(t, 10*time.Second, func() bool { return published(t, healthyDSN) == wantPublished },
			"round %d: %d of %d rows of the healthy shard published while the other hangs", round, published(t, healthyDSN), wantPublished)
	}
	if v := testinfra.MetricSum(t, svc.AdminHTTPAddr(), `orderflow_shard_breaker_state{shard="shard-0"}`); v != 0 {
		t.Errorf("the healthy shard's breaker is %v, want 0 (closed)", v)
	}

	private.Continue()
	for id, e := range writeEvents(t, hungDSN, 200001, 25, 2) {
		want[id] = e
	}
	testinfra.Eventually(t, 30*time.Second, func() bool { return published(t, hungDSN) == 20+50 },
		"%d of %d rows of the resumed shard published", published(t, hungDSN), 20+50)
	testinfra.Eventually(t, 30*time.Second, func() bool { return c.distinct() == len(want) },
		"consumed %d of %d events", c.distinct(), len(want))
	if v := testinfra.MetricSum(t, svc.AdminHTTPAddr(), `orderflow_shard_up{shard="shard-1"}`); v != 1 {
		t.Errorf("orderflow_shard_up of the resumed shard = %v, want 1", v)
	}
}

// published counts one shard's PUBLISHED rows.
func published(t *testing.T, dsn string) int {
	t.Helper()
	var n int
	if err := testinfra.DB(t, dsn).QueryRow("SELECT COUNT(*) FROM outbox WHERE status = 'PUBLISHED'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
