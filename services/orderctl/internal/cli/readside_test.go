package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orderflow/orderflow/services/orderctl/internal/dlq"
	"github.com/orderflow/orderflow/services/orderctl/internal/orderstest"
	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/orderdoc"
	"github.com/orderflow/orderflow/shared/testinfra"
)

var placedAt = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// readSide is a per-test read side: shards, a Mongo database, a DLQ topic
// with two partitions and an external topic.
type readSide struct {
	shards             *orderstest.Shards
	mdb                *mongo.Database
	dlqTopic, extTopic string
}

func newReadSide(t *testing.T) *readSide {
	t.Helper()
	return &readSide{shards: orderstest.NewShards(t), mdb: testinfra.MongoDatabase(t),
		dlqTopic: testinfra.KafkaTopic(t, 2), extTopic: testinfra.KafkaTopic(t, 1)}
}

// run runs orderctl with the read side's flags appended.
func (r *readSide) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return r.runOn(t, r.shards.File, args...)
}

// runOn runs orderctl against the shards of another topology file.
func (r *readSide) runOn(t *testing.T, topology string, args ...string) (string, error) {
	t.Helper()
	return orderctl(t, append(args, "--topology", topology, "--mongo", testinfra.MongoURI(), "--mongo-database", r.mdb.Name(),
		"--brokers", strings.Join(testinfra.KafkaBrokers(), ","), "--dlq-topic", r.dlqTopic, "--external-topic", r.extTopic, "--max-wait", "20s")...)
}

func (r *readSide) docs(t *testing.T) map[int64]orderdoc.Document {
	return orderstest.Documents(t, r.mdb)
}

func (r *readSide) count(t *testing.T, coll string) int64 {
	t.Helper()
	n, err := r.mdb.Collection(coll).CountDocuments(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func topicSize(t *testing.T, topic string) int64 {
	t.Helper()
	client, err := sarama.NewClient(testinfra.KafkaBrokers(), kafkax.NewConfig("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, p := range parts {
		off, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		n += off
	}
	return n
}

// deadLetter is a message as the projector writes it to the DLQ.
type deadLetter struct {
	partition int32
	key       string
	value     []byte
	headers   map[string]string
}

func event(no int64, version int32, typ string) []byte {
	b, err := proto.Marshal(&eventsv1.OrderEvent{EventId: fmt.Sprintf("ev-%d-%d", no, version), EventType: typ, OrderNo: no,
		OrderVersion: version, OccurredAt: timestamppb.New(placedAt), Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
	if err != nil {
		panic(err)
	}
	return b
}

func produce(t *testing.T, topic string, letters ...deadLetter) {
	t.Helper()
	cfg := kafkax.NewConfig("test")
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer(testinfra.KafkaBrokers(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, l := range letters {
		msg := &sarama.ProducerMessage{Topic: topic, Partition: l.partition, Key: sarama.StringEncoder(l.key), Value: sarama.ByteEncoder(l.value)}
		for k, v := range l.headers {
			msg.Headers = append(msg.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
		}
		if _, _, err := p.SendMessage(msg); err != nil {
			t.Fatal(err)
		}
	}
}

func headers(reason, errText, source, eventType, eventID string, no int64, at time.Time) map[string]string {
	h := map[string]string{"dlq-error": errText, "dlq-attempts": "5", "dlq-source": source, "dlq-at": at.UTC().Format(time.RFC3339Nano),
		"event-type": eventType, "event-id": eventID, "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	if reason != "" { // the projector's newer headers
		h["dlq-reason"], h["dlq-event-type"], h["dlq-order-no"] = reason, eventType, strconv.FormatInt(no, 10)
	}
	return h
}

// row is the fields of the list line of entry, nil when not listed.
func row(out, entry string) []string {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == entry {
			return f
		}
	}
	return nil
}

var summaryRE = regexp.MustCompile(`dlq: matched=(\d+) unresolved=(\d+) shown=(\d+)\n$`)

func summary(t *testing.T, out string) (matched, unresolved, shown int) {
	t.Helper()
	m := summaryRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary as the last line:\n%s", out)
	}
	a, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	c, _ := strconv.Atoi(m[3])
	return a, b, c
}

// Dead letters with the real header set are listed, filtered, shown,
// replayed (dry and for real, idempotently, audited) and worked off; an
// undecodable one is reported until it is discarded.
func TestDLQ(t *testing.T) {
	t.Parallel()
	r := newReadSide(t)
	r.shards.Put(t, 2, 2, placedAt)
	r.shards.Put(t, 3, 1, placedAt)
	r.shards.Put(t, 5, 3, placedAt)
	now := time.Now()
	produce(t, r.dlqTopic,
		// 0/0: new headers, dead-lettered three hours ago.
		deadLetter{0, "2", event(2, 2, "OrderAccepted"), headers(dlq.ReasonRetriesExhausted, "writing documents: timeout", "orders.internal.v1/7/41", "OrderAccepted", "ev-2-2", 2, now.Add(-3*time.Hour))},
		// 0/1: old headers only: the reason is inferred.
		deadLetter{0, "3", event(3, 1, "OrderPlaced"), headers("", "reading orders: shard unavailable", "orders.internal.v1/3/9", "OrderPlaced", "ev-3-1", 3, now)},
		// 1/0: an event type the projector does not know.
		deadLetter{1, "5", event(5, 3, "OrderTeleported"), headers(dlq.ReasonUnknownEventType, "undecodable: not an order event", "orders.internal.v1/1/100", "OrderTeleported", "ev-5-3", 5, now)},
		// 1/1: garbage, old headers.
		deadLetter{1, "7", []byte{0xff, 0xff, 0xff}, headers("", "undecodable: proto: cannot parse invalid wire-format data", "orders.internal.v1/1/101", "OrderPlaced", "ev-7-1", 7, now)},
	)

	out, err := r.run(t, "dlq", "list")
	if err != nil {
		t.Fatalf("dlq list: %v\n%s", err, out)
	}
	if m, u, s := summary(t, out); m != 4 || u != 4 || s != 4 {
		t.Errorf("list: matched %d unresolved %d shown %d, want 4 4 4:\n%s", m, u, s, out)
	}
	rows := []struct{ entry, reason, source, event, order string }{
		{"0/0", "retries_exhausted", "orders.internal.v1/7/41", "OrderAccepted", "2"},
		{"0/1", "retries_exhausted", "orders.internal.v1/3/9", "OrderPlaced", "3"},
		{"1/0", "unknown_event_type", "orders.internal.v1/1/100", "OrderTeleported", "5"},
		{"1/1", "undecodable", "orders.internal.v1/1/101", "OrderPlaced", "7"},
	}
	for _, w := range rows {
		f := row(out, w.entry)
		if len(f) < 7 || f[1] != w.reason || f[2] != w.source || f[3] != w.event || f[4] != w.order || f[6] != "open" {
			t.Errorf("list row %v, want %+v:\n%s", f, w, out)
		}
	}
	if f := row(out, "0/0"); len(f) < 6 || !strings.HasPrefix(f[5], "3h") {
		t.Errorf("the entry dead-lettered 3 h ago has age %v", f)
	}

	// Filters, JSON, paging.
	filters := []struct {
		name string
		args []string
		want []string
	}{
		{name: "reason", args: []string{"--reason", "undecodable"}, want: []string{"1/1"}},
		{name: "two reasons, replay's spelling", args: []string{"--dlq-reason", "undecodable,unknown_event_type"}, want: []string{"1/0", "1/1"}},
		{name: "orders", args: []string{"--orders", "5,2"}, want: []string{"0/0", "1/0"}},
		{name: "since", args: []string{"--since", "1h"}, want: []string{"0/1", "1/0", "1/1"}},
		{name: "until", args: []string{"--until", "1h"}, want: []string{"0/0"}},
	}
	for _, f := range filters {
		t.Run(f.name, func(t *testing.T) {
			out, err := r.run(t, append([]string{"dlq", "list", "--json"}, f.args...)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if strings.HasPrefix(line, "{") {
					var e struct{ Entry string }
					if err := json.Unmarshal([]byte(line), &e); err != nil {
						t.Fatal(err)
					}
					got = append(got, e.Entry)
				}
			}
			if strings.Join(got, " ") != strings.Join(f.want, " ") {
				t.Errorf("entries %v, want %v:\n%s", got, f.want, out)
			}
		})
	}
	out, _ = r.run(t, "dlq", "list", "--json", "--orders", "2")
	var e0 struct {
		Source, EventType, Reason, Status string
		OrderNo                           int64
		Attempts                          int
	}
	if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &e0); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if e0.Source != "orders.internal.v1/7/41" || e0.EventType != "OrderAccepted" || e0.OrderNo != 2 || e0.Attempts != 5 || e0.Status != "open" {
		t.Errorf("json entry %+v", e0)
	}
	out, err = r.run(t, "dlq", "list", "--page-size", "3")
	tok := regexp.MustCompile(`--page-token (\S+)`).FindStringSubmatch(out)
	if err != nil || tok == nil || row(out, "1/1") != nil {
		t.Fatalf("first page of 3: %v\n%s", err, out)
	}
	out, err = r.run(t, "dlq", "list", "--page-size", "3", "--page-token", tok[1])
	if _, _, s := summary(t, out); err != nil || s != 1 || row(out, "1/1") == nil || strings.Contains(out, "--page-token") {
		t.Errorf("second page: %v\n%s", err, out)
	}
	if out, err := r.run(t, "dlq", "list", "--fail-if-any"); err == nil {
		t.Errorf("--fail-if-any with open entries exited 0:\n%s", out)
	}
	if out, err := r.run(t, "dlq", "count"); err != nil || !strings.HasSuffix(out, "dlq: matched=4 unresolved=4 shown=0\n") {
		t.Errorf("count: %v\n%s", err, out)
	}

	// Show.
	out, err = r.run(t, "dlq", "show", "0/0")
	for _, want := range []string{"reason:         retries_exhausted", "source:         orders.internal.v1/7/41", "order 2 version 2, OrderAccepted",
		"dlq-order-no: 2", "traceparent: 00-0af7", "worked off:     no"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("show 0/0 lacks %q (%v):\n%s", want, err, out)
		}
	}
	if out, err := r.run(t, "dlq", "show", "1:1"); err != nil || !strings.Contains(out, "event:          undecodable") {
		t.Errorf("show 1:1: %v\n%s", err, out)
	}
	if out, err := r.run(t, "dlq", "show", "1/9"); err == nil {
		t.Errorf("show of an offset past the end succeeded:\n%s", out)
	}

	// Replay: a reason is required; a dry run changes nothing.
	if out, err := r.run(t, "dlq", "replay"); err == nil {
		t.Errorf("replay without --reason succeeded:\n%s", out)
	}
	out, err = r.run(t, "dlq", "replay", "--dry-run", "--reason", "shard-1 was down")
	if err != nil || !strings.Contains(out, "dry-run=true entries=4 replayed=3 order-missing=0 undecodable=1") || !strings.Contains(out, "1/1: not replayed (undecodable") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if docs := r.docs(t); len(docs) != 0 || r.count(t, dlq.ResolvedCollection) != 0 || topicSize(t, r.extTopic) != 0 {
		t.Fatalf("the dry run wrote: documents %v", docs)
	}

	// For real: the documents at their shards' versions, external events
	// for every version, three entries worked off, the undecodable one left.
	dlqBefore := topicSize(t, r.dlqTopic)
	out, err = r.run(t, "dlq", "replay", "--reason", "shard-1 was down")
	if err != nil || !strings.Contains(out, "dry-run=false entries=4 replayed=3 order-missing=0 undecodable=1 discarded=0 documents=3 external=6") {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	testinfra.Eventually(t, 10*time.Second, func() bool {
		d := r.docs(t)
		return len(d) == 3 && d[2].Version == 2 && d[3].Version == 1 && d[5].Version == 3 && d[5].Status == "DELIVERING"
	}, "documents of orders 2, 3, 5 at versions 2, 1, 3: %v", r.docs(t))
	if got := topicSize(t, r.extTopic); got != 6 {
		t.Errorf("%d external events, want 6 (versions 1-2, 1, 1-3)", got)
	}
	if got := topicSize(t, r.dlqTopic); got != dlqBefore {
		t.Errorf("replay wrote to the DLQ: %d messages, was %d", got, dlqBefore)
	}
	out, err = r.run(t, "dlq", "list")
	if m, u, _ := summary(t, out); err != nil || m != 1 || u != 1 || row(out, "1/1") == nil {
		t.Errorf("list after the replay: %v\n%s", err, out)
	}
	// count reads no message unless filtered, and agrees with list.
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{name: "open", args: nil, want: "dlq: matched=1 unresolved=1 shown=0\n"},
		{name: "all", args: []string{"--all"}, want: "dlq: matched=4 unresolved=1 shown=0\n"},
		{name: "filtered", args: []string{"--all", "--reason", "retries_exhausted"}, want: "dlq: matched=2 unresolved=0 shown=0\n"},
	} {
		if out, err := r.run(t, append([]string{"dlq", "count"}, c.args...)...); err != nil || !strings.HasSuffix(out, c.want) {
			t.Errorf("count after the replay, %s: %v\n%s", c.name, err, out)
		}
	}
	if out, err := r.run(t, "dlq", "show", "0/0"); err != nil || !strings.Contains(out, "worked off:     replayed") || !strings.Contains(out, "shard-1 was down") {
		t.Errorf("show of a replayed entry: %v\n%s", err, out)
	}

	// Again: only the undecodable entry is selected, nothing changes.
	before := r.docs(t)
	out, err = r.run(t, "dlq", "replay", "--reason", "once more")
	if err != nil || !strings.Contains(out, "entries=1 replayed=0 order-missing=0 undecodable=1 discarded=0 documents=0 external=0") {
		t.Errorf("second replay: %v\n%s", err, out)
	}
	// --all re-replays the worked-off ones: the version guard keeps them.
	out, err = r.run(t, "dlq", "replay", "--all", "--dlq-reason", "retries_exhausted,unknown_event_type", "--reason", "all again")
	if err != nil || !strings.Contains(out, "entries=3 replayed=3 order-missing=0 undecodable=0 discarded=0 documents=0 external=0") {
		t.Errorf("replay --all: %v\n%s", err, out)
	}
	for no, d := range r.docs(t) {
		if !d.ProjectedAt.Equal(before[no].ProjectedAt) {
			t.Errorf("order %d rewritten by an idempotent replay", no)
		}
	}
	if got := topicSize(t, r.extTopic); got != 6 {
		t.Errorf("%d external events after the idempotent replays, want still 6", got)
	}

	// Discard the undecodable one: the DLQ is empty.
	out, err = r.run(t, "dlq", "replay", "--dlq-reason", "undecodable", "--discard", "--reason", "garbage from a test producer")
	if err != nil || !strings.Contains(out, "1/1: discarded (undecodable)") || !strings.Contains(out, "discarded=1") {
		t.Errorf("discard: %v\n%s", err, out)
	}
	out, err = r.run(t, "dlq", "list", "--fail-if-any")
	if m, u, _ := summary(t, out); err != nil || m != 0 || u != 0 {
		t.Errorf("list --fail-if-any of a worked-off DLQ: %v\n%s", err, out)
	}
	out, err = r.run(t, "dlq", "list", "--all")
	if m, u, _ := summary(t, out); err != nil || m != 4 || u != 0 || !strings.Contains(out, "discarded") {
		t.Errorf("list --all: %v\n%s", err, out)
	}

	// One audit record per run, dry or not.
	audits, err := dlq.NewStore(r.mdb).Audits(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(audits) != 5 {
		t.Fatalf("%d audit records, want 5: %+v", len(audits), audits)
	}
	dry, real := audits[0], audits[1]
	if !dry.DryRun || real.DryRun || real.Reason != "shard-1 was down" || !strings.HasPrefix(real.Actor, "orderctl:") ||
		len(real.Entries) != 4 || real.Outcome.Replayed != 3 || real.Outcome.Undecodable != 1 || real.Status != dlq.AuditDone || real.FinishedAt.IsZero() {
		t.Errorf("audit records: dry %+v, real %+v", dry, real)
	}
	if a := audits[3]; !a.Filter.All || len(a.Filter.Reasons) != 2 {
		t.Errorf("the --all replay's audit lacks its filter: %+v", a.Filter)
	}
}
