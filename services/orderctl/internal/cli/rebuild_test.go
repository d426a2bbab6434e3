package cli_test

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orderflow/orderflow/services/orderctl/internal/dlq"
	"github.com/orderflow/orderflow/shared/orderdoc"
	"github.com/orderflow/orderflow/shared/shard"
)

// The read store loses documents: rebuild puts every one back at its
// shard's version, --orders only those; verify --repair fixes exactly the
// missing and stale ones.
func TestRebuildAndRepair(t *testing.T) {
	t.Parallel()
	r := newReadSide(t)
	const n = 12
	for no := int64(1); no <= n; no++ {
		r.shards.Put(t, no, int32(1+no%4), placedAt.Add(time.Duration(no)*time.Hour))
	}
	out, err := r.run(t, "readmodel", "rebuild", "--batch", "5", "--rate", "100")
	if err != nil || !strings.Contains(lastLine(out), "rebuild: orders=12 written=12 current=0 external=30 missing=0") {
		t.Fatalf("rebuild: %v\n%s", err, out)
	}
	docs := r.docs(t)
	for no := int64(1); no <= n; no++ {
		if d, ok := docs[no]; !ok || d.Version != int32(1+no%4) || d.ExternalVersion != d.Version || len(d.StatusHistory) != int(d.Version) {
			t.Errorf("order %d: document %+v, want version %d", no, d, 1+no%4)
		}
	}
	if out, err := r.run(t, "verify"); err != nil || !strings.Contains(out, "no mismatches") {
		t.Fatalf("verify after the rebuild: %v\n%s", err, out)
	}
	externals := func(want int64, when string) {
		t.Helper()
		if got := topicSize(t, r.extTopic); got != want {
			t.Errorf("%s: %d external events, want %d", when, got, want)
		}
	}
	externals(30, "after the first rebuild") // versions 1..(1+no%4) of orders 1..12

	// Lose documents 3, 4 and 8; order 6 moves on without the read side.
	coll := r.mdb.Collection(orderdoc.Collection)
	if _, err := coll.DeleteMany(context.Background(), bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: []int64{3, 4, 8}}}}}); err != nil {
		t.Fatal(err)
	}
	r.shards.Advance(t, 6, 4)

	out, err = r.run(t, "readmodel", "rebuild", "--orders", "3")
	if err != nil || !strings.Contains(out, "rebuild: orders=1 written=1") {
		t.Fatalf("rebuild --orders 3: %v\n%s", err, out)
	}
	docs = r.docs(t)
	if _, ok := docs[3]; !ok {
		t.Error("rebuild --orders 3 did not put order 3 back")
	}
	if _, ok := docs[4]; ok {
		t.Error("rebuild --orders 3 also wrote order 4")
	}
	externals(34, "after rebuilding the lost order 3 (its 4 versions again)")

	// verify --repair: exactly 4, 8 (missing) and 6 (stale).
	before := r.docs(t)
	out, err = r.run(t, "verify", "--repair")
	if err != nil || !strings.Contains(out, "repair: re-projected=3 repaired=3 still-wrong=0 other-mismatches=0") {
		t.Fatalf("verify --repair: %v\n%s", err, out)
	}
	after := r.docs(t)
	for no := int64(1); no <= n; no++ {
		want := int32(1 + no%4)
		if no == 6 {
			want = 4
		}
		if after[no].Version != want {
			t.Errorf("order %d at version %d after the repair, want %d", no, after[no].Version, want)
		}
		repaired := no == 4 || no == 6 || no == 8
		if !repaired && !after[no].ProjectedAt.Equal(before[no].ProjectedAt) {
			t.Errorf("order %d rewritten by the repair though it was current", no)
		}
	}
	if out, err := r.run(t, "verify"); err != nil || !strings.Contains(out, "no mismatches") {
		t.Errorf("verify after the repair: %v\n%s", err, out)
	}
	if out, err := r.run(t, "verify", "--repair"); err != nil || !strings.Contains(out, "no mismatches") {
		t.Errorf("verify --repair with nothing to repair: %v\n%s", err, out)
	}
	externals(37, "after the repair (orders 4 and 8 lost at version 1, order 6's version 4)")

	// The whole read store lost: a rebuild puts every document back at its
	// shard's version and republishes every external event.
	if _, err := coll.DeleteMany(context.Background(), bson.D{}); err != nil {
		t.Fatal(err)
	}
	out, err = r.run(t, "readmodel", "rebuild", "--batch", "4")
	if err != nil || !strings.Contains(lastLine(out), "rebuild: orders=12 written=12 current=0 external=31") {
		t.Fatalf("rebuild of an empty read store: %v\n%s", err, out)
	}
	for no, d := range r.docs(t) {
		if d.Version != after[no].Version {
			t.Errorf("order %d rebuilt at version %d, want %d", no, d.Version, after[no].Version)
		}
	}
	if len(r.docs(t)) != n {
		t.Errorf("%d documents after the rebuild, want %d", len(r.docs(t)), n)
	}
	externals(68, "after rebuilding everything (at-least-once: all again)")
}

// A shard outage during a replay is waited out up to --max-wait; then the
// replay stops with the error and marks nothing worked off, and a later
// replay finishes the job.
func TestDLQReplayOutage(t *testing.T) {
	t.Parallel()
	r := newReadSide(t)
	r.shards.Put(t, 2, 1, placedAt)
	produce(t, r.dlqTopic, deadLetter{0, "2", event(2, 1, "OrderPlaced"),
		headers(dlq.ReasonRetriesExhausted, "reading orders: shard unavailable", "orders.internal.v1/0/1", "OrderPlaced", "ev-2-1", 2, time.Now())})

	// The same shards, but nothing listens where shard-0 is said to be.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	_ = l.Close()
	down := r.shards.Topology
	down.Shards = append([]shard.Spec(nil), down.Shards...)
	down.Shards[0].DSN = "root@tcp(" + dead + ")/orderflow"
	file := filepath.Join(t.TempDir(), "down.json")
	if err := shard.WriteTopology(file, down); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err := r.runOn(t, file, "dlq", "replay", "--reason", "during the outage", "--max-wait", "1500ms")
	if err == nil || !strings.Contains(out, "replayed=0") || !strings.Contains(err.Error(), "gave up") {
		t.Fatalf("replay with shard-0 down: %v\n%s", err, out)
	}
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Errorf("gave up after %s, before --max-wait", took)
	}
	if n := r.count(t, dlq.ResolvedCollection); n != 0 || len(r.docs(t)) != 0 {
		t.Fatalf("a failed replay marked %d entries worked off", n)
	}
	audits, err := dlq.NewStore(r.mdb).Audits(context.Background())
	if err != nil || len(audits) != 1 || audits[0].Status != dlq.AuditFailed || audits[0].Error == "" {
		t.Fatalf("audit of the failed replay: %+v (%v)", audits, err)
	}

	out, err = r.run(t, "dlq", "replay", "--reason", "shard-0 back")
	if err != nil || !strings.Contains(out, "entries=1 replayed=1") {
		t.Fatalf("replay after the outage: %v\n%s", err, out)
	}
	if d := r.docs(t); d[2].Version != 1 || r.count(t, dlq.ResolvedCollection) != 1 {
		t.Errorf("after the outage: documents %v", d)
	}
}

// lastLine is the last line of out (the summary).
func lastLine(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	return lines[len(lines)-1]
}
