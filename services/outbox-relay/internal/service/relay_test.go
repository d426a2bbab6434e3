package service_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderflow/orderflow/shared/testinfra"
)

// Many orders' events, interleaved on two shards, all reach Kafka keyed by
// order number, and each order's events arrive in version order.
func TestRelayPublishesEveryEventInOrderPerOrder(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 2)
	topic := testinfra.KafkaTopic(t, 6)
	want := writeEvents(t, topo.Shards[0].DSN, 1, 150, 4)
	for id, e := range writeEvents(t, topo.Shards[1].DSN, 100001, 150, 4) {
		want[id] = e
	}
	c := consume(t, testinfra.KafkaBrokers(), topic)
	startRelay(t, testConfig(topic, testinfra.KafkaBrokers()), topo)

	// Rows written while the relay runs, including one whose transaction
	// commits after a later row's: status-based claiming still finds it.
	late := lateCommit(t, topo.Shards[0].DSN, 900001)
	for _, e := range late {
		want[e.id] = e
	}

	testinfra.Eventually(t, 60*time.Second, func() bool { return c.distinct() == len(want) },
		"consumed %d of %d events", c.distinct(), len(want))
	testinfra.Eventually(t, 10*time.Second, func() bool { return countStatus(t, topo, "PUBLISHED") == len(want) },
		"%d of %d rows marked PUBLISHED", countStatus(t, topo, "PUBLISHED"), len(want))

	last := map[int64]int32{}
	partitionOf := map[int64]int32{}
	for _, r := range c.snapshot() {
		w, ok := want[r.id]
		if !ok {
			t.Fatalf("unexpected event %s", r.id)
		}
		if r.orderNo != w.orderNo || r.version != w.version || r.typ != w.typ {
			t.Errorf("event %s arrived as %+v, written as %+v", r.id, r.event, w)
		}
		if r.headers["event-type"] != w.typ || r.headers["event-id"] != w.id || r.headers["traceparent"] == "" {
			t.Errorf("event %s headers %v", r.id, r.headers)
		}
		if p, ok := partitionOf[r.orderNo]; ok && p != r.partition {
			t.Errorf("order %d's events are on partitions %d and %d", r.orderNo, p, r.partition)
		}
		partitionOf[r.orderNo] = r.partition
		if r.version <= last[r.orderNo] {
			t.Errorf("order %d: version %d arrived after version %d", r.orderNo, r.version, last[r.orderNo])
		}
		last[r.orderNo] = r.version
	}
}

// lateCommit writes two rows of different orders where the one with the
// lower id commits last.
func lateCommit(t *testing.T, dsn string, orderNo int64) []event {
	t.Helper()
	db := testinfra.DB(t, dsn)
	ctx := context.Background()
	early := event{id: uuid.NewString(), orderNo: orderNo, version: 1, typ: "OrderPlaced"}
	later := event{id: uuid.NewString(), orderNo: orderNo + 1, version: 1, typ: "OrderPlaced"}
	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO outbox (event_id, event_type, order_no, order_version, occurred_at, traceparent)
		VALUES (?, ?, ?, 1, ?, '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')`,
		early.id, early.typ, early.orderNo, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	insertEvent(t, db, later)
	// Give the relay the chance to publish the later row first.
	testinfra.Eventually(t, 30*time.Second, func() bool {
		var s string
		_ = db.QueryRow("SELECT status FROM outbox WHERE event_id = ?", later.id).Scan(&s)
		return s == "PUBLISHED"
	}, "the later row was not published")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return []event{early, later}
}

// A row Kafka will never take is parked as FAILED after the configured
// attempts, with its error; the rows around it keep flowing.
func TestPoisonRowIsParkedAndOthersFlow(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 1)
	topic := testinfra.KafkaTopic(t, 3)
	want := writeEvents(t, topo.Shards[0].DSN, 1, 20, 2)
	db := testinfra.DB(t, topo.Shards[0].DSN)
	poison := event{id: uuid.NewString(), orderNo: 555, version: 1, typ: "OrderTeleported"}
	insertEvent(t, db, poison)
	for id, e := range writeEvents(t, topo.Shards[0].DSN, 1000, 20, 1) {
		want[id] = e
	}
	cfg := testConfig(topic, testinfra.KafkaBrokers())
	cfg.MaxAttempts = 3
	c := consume(t, testinfra.KafkaBrokers(), topic)
	startRelay(t, cfg, topo)

	testinfra.Eventually(t, 30*time.Second, func() bool { return c.distinct() == len(want) },
		"consumed %d of %d good events", c.distinct(), len(want))
	var status, lastError string
	var attempts int
	testinfra.Eventually(t, 30*time.Second, func() bool {
		_ = db.QueryRow("SELECT status, attempts, COALESCE(last_error, '') FROM outbox WHERE event_id = ?", poison.id).
			Scan(&status, &attempts, &lastError)
		return status == "FAILED"
	}, "poison row is %s after %d attempts", status, attempts)
	if attempts != 3 || lastError == "" {
		t.Errorf("poison row: %d attempts, last error %q; want 3 and the reason", attempts, lastError)
	}
	if n := countStatus(t, topo, "PUBLISHED"); n != len(want) {
		t.Errorf("%d rows PUBLISHED, want %d", n, len(want))
	}
}

// Kafka stopped while orders are written: rows wait as PENDING without
// spending attempts, and after Kafka returns everything is delivered.
func TestKafkaOutageLosesNothing(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 2)
	kafka := testinfra.StartKafka(t)
	topic := "orders.internal.v1"
	if err := createTopic(kafka.Brokers(), topic); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(topic, kafka.Brokers())
	cfg.MaxAttempts = 2 // an outage must not spend these
	svc := startRelay(t, cfg, topo)
	want := writeEvents(t, topo.Shards[0].DSN, 1, 50, 1)
	testinfra.Eventually(t, 30*time.Second, func() bool { return countStatus(t, topo, "PUBLISHED") == len(want) },
		"rows before the outage not published")

	kafka.Stop()
	for id, e := range writeEvents(t, topo.Shards[0].DSN, 1000, 50, 2) {
		want[id] = e
	}
	for id, e := range writeEvents(t, topo.Shards[1].DSN, 5000, 50, 2) {
		want[id] = e
	}
	// While Kafka is down the relay keeps trying (bounded by the outage
	// back-off) and nothing is parked.
	testinfra.Eventually(t, 30*time.Second, func() bool {
		return testinfra.MetricSum(t, svc.AdminHTTPAddr(), `orderflow_outbox_publish_failures_total{kind="transient"`) > 0
	}, "the relay never noticed the outage")
	if n := countStatus(t, topo, "FAILED"); n != 0 {
		t.Fatalf("%d rows FAILED during a Kafka outage", n)
	}

	restarted := time.Now()
	kafka.Start()
	testinfra.Eventually(t, 90*time.Second, func() bool { return countStatus(t, topo, "PUBLISHED") == len(want) },
		"%d of %d rows published after Kafka returned", countStatus(t, topo, "PUBLISHED"), len(want))
	t.Logf("backlog of %d rows drained %.1f s after Kafka returned", len(want)-50, time.Since(restarted).Seconds())
	c := consume(t, kafka.Brokers(), topic)
	testinfra.Eventually(t, 60*time.Second, func() bool { return c.distinct() == len(want) },
		"consumed %d of %d events", c.distinct(), len(want))
	for _, s := range topo.Shards {
		var attempts int
		_ = testinfra.DB(t, s.DSN).QueryRow("SELECT COALESCE(MAX(attempts), 0) FROM outbox").Scan(&attempts)
		if attempts != 0 {
			t.Errorf("%s: the outage spent %d attempts of a row", s.Name, attempts)
		}
	}
}

// PUBLISHED rows past the retention are deleted in small batches; newer
// published rows and unpublished rows stay.
func TestCleanupDeletesOldPublishedRows(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 1)
	topic := testinfra.KafkaTopic(t, 1)
	db := testinfra.DB(t, topo.Shards[0].DSN)
	old := time.Now().UTC().Add(-8 * 24 * time.Hour)
	for i := range 25 {
		if _, err := db.Exec(`INSERT INTO outbox (event_id, event_type, order_no, order_version, occurred_at, status, published_at)
			VALUES (?, 'OrderPlaced', ?, 1, ?, 'PUBLISHED', ?)`, uuid.NewString(), i+1, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO outbox (event_id, event_type, order_no, order_version, occurred_at, status, published_at)
		VALUES (?, 'OrderPlaced', 99, 1, ?, 'PUBLISHED', ?)`, uuid.NewString(), time.Now().UTC(), time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO outbox (event_id, event_type, order_no, order_version, occurred_at, status, attempts, last_error)
		VALUES (?, 'OrderPlaced', 98, 1, ?, 'FAILED', 10, 'kept for the operator')`, uuid.NewString(), old); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(topic, testinfra.KafkaBrokers())
	cfg.CleanupBatch = 7
	cfg.CleanupInterval = 100 * time.Millisecond
	startRelay(t, cfg, topo)
	testinfra.Eventually(t, 20*time.Second, func() bool { return countStatus(t, topo, "PUBLISHED") == 1 },
		"%d PUBLISHED rows left, want only the recent one", countStatus(t, topo, "PUBLISHED"))
	if n := countStatus(t, topo, "FAILED"); n != 1 {
		t.Errorf("cleanup touched FAILED rows: %d left", n)
	}
}

// A cleanup that outlives the statement timeout (here a row it must delete
// is locked by another transaction the whole time) fails on a connection of
// the pool, not on the relay's lock connection: the relay keeps the shard,
// without taking it anew, and goes on publishing. Run on the lock
// connection, the timeout closed it, the lock went with it, and the relay
// gave the shard up and took it back again and again, publishing nothing.
func TestSlowCleanupDoesNotStopPublishing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	topo := testinfra.Shards(t, 1)
	topic := testinfra.KafkaTopic(t, 1)
	db := testinfra.DB(t, topo.Shards[0].DSN)
	old := time.Now().UTC().Add(-8 * 24 * time.Hour)
	if _, err := db.Exec(`INSERT INTO outbox (event_id, event_type, order_no, order_version, occurred_at, status, published_at)
		VALUES (?, 'OrderPlaced', 1, 1, ?, 'PUBLISHED', ?)`, uuid.NewString(), old, old); err != nil {
		t.Fatal(err)
	}
	holder, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Rollback() })
	if _, err := holder.Exec("SELECT id FROM outbox WHERE status = 'PUBLISHED' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig(topic, testinfra.KafkaBrokers())
	cfg.Shard.StatementTimeout = 500 * time.Millisecond
	cfg.CleanupInterval = time.Second
	svc := startRelay(t, cfg, topo)
	addr := svc.AdminHTTPAddr()
	testinfra.Eventually(t, 20*time.Second, func() bool {
		return testinfra.MetricSum(t, addr, "orderflow_outbox_cleanup_failures_total{") >= 1
	}, "no cleanup failed while its row was locked")
	acquiredAt := func() time.Time {
		var at time.Time
		if err := db.QueryRow("SELECT acquired_at FROM outbox_relay_owner").Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	took := acquiredAt()

	want := writeEvents(t, topo.Shards[0].DSN, 100, 20, 2)
	testinfra.Eventually(t, 30*time.Second, func() bool { return countStatus(t, topo, "PUBLISHED") == len(want)+1 },
		"the relay stopped publishing while its cleanup failed")
	c := consume(t, testinfra.KafkaBrokers(), topic)
	testinfra.Eventually(t, 30*time.Second, func() bool { return c.distinct() == len(want) },
		"consumed fewer events than were published")
	testinfra.Eventually(t, 20*time.Second, func() bool {
		return testinfra.MetricSum(t, addr, "orderflow_outbox_cleanup_failures_total{") >= 2
	}, "the failed cleanup was not tried again an interval later")
	if again := acquiredAt(); !again.Equal(took) {
		t.Errorf("the relay took the shard anew at %s (first at %s): it gave the shard up over a cleanup", again, took)
	}
	if owned := testinfra.MetricSum(t, addr, "orderflow_outbox_shard_owned{"); owned != 1 {
		t.Errorf("orderflow_outbox_shard_owned = %v, want 1", owned)
	}
}
