package service_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// Events arrive duplicated and out of order; the documents end at the
// shards' versions and every version's external event is published once.
func TestProjectionIsIdempotentUnderDuplicatesAndReordering(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testinfra.Shards(t, 2))
	var orders []order
	for i := range 40 {
		o := order{no: int64(i + 1), version: int32(i%4 + 1)}
		if i%7 == 0 {
			o.version, o.cancelled = 2, true
		}
		orders = append(orders, o)
		e.writeOrder(o)
	}
	var msgs []*sarama.ProducerMessage
	for _, o := range orders {
		for v := int32(1); v <= o.version; v++ {
			msgs = append(msgs, internalEvent(o, v), internalEvent(o, v)) // every event twice
		}
	}
	rand.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
	external := e.collect(e.external)
	svc, _ := e.start(e.config())
	e.produce(msgs...)

	for _, o := range orders {
		testinfra.Eventually(t, 30*time.Second, func() bool {
			d, ok := e.doc(o.no)
			return ok && d.Version == o.version
		}, "order %d not projected at version %d", o.no, o.version)
		d, _ := e.doc(o.no)
		loc, _ := e.topo.Route(o.no)
		if d.Status != o.status(o.version) || len(d.StatusHistory) != int(o.version) || len(d.Items) != 2 ||
			d.TotalAmount != 19500 || d.Shard != loc.Shard || d.UserID != fmt.Sprintf("user-%d", o.no%3) ||
			(o.cancelled && d.CancelReason != "changed my mind") {
			t.Errorf("order %d document %+v", o.no, d)
		}
	}

	// One external event per (order, version), carrying the order as of it.
	want := 0
	for _, o := range orders {
		want += int(o.version)
	}
	testinfra.Eventually(t, 30*time.Second, func() bool { return len(external.all()) >= want },
		"%d of %d external events", len(external.all()), want)
	seen := map[string]bool{}
	perOrder := map[int64][]int32{}
	for _, m := range external.all() {
		var ev eventsv1.OrderExternalEvent
		if err := proto.Unmarshal(m.Value, &ev); err != nil {
			t.Fatal(err)
		}
		if seen[ev.GetEventId()] {
			t.Errorf("external event %s published twice", ev.GetEventId())
		}
		seen[ev.GetEventId()] = true
		o := orders[ev.GetOrder().GetOrderNo()-1]
		v := ev.GetOrder().GetVersion()
		if ev.GetOrder().GetStatus().String() != o.status(v) || len(ev.GetOrder().GetStatusHistory()) != int(v) ||
			ev.GetEventType() != eventTypes[o.status(v)] || string(m.Key) != fmt.Sprint(o.no) {
			t.Errorf("external event for order %d version %d: %v", o.no, v, &ev)
		}
		perOrder[o.no] = append(perOrder[o.no], v)
	}
	for _, o := range orders {
		if len(perOrder[o.no]) != int(o.version) {
			t.Errorf("order %d: external versions %v, want 1..%d once each", o.no, perOrder[o.no], o.version)
		}
	}

	// A later change reaches the document and adds exactly one external event.
	later := order{no: 2, version: 3}
	e.writeOrder(later)
	e.produce(internalEvent(later, 3), internalEvent(orders[1], 1)) // the new event and a stale one
	testinfra.Eventually(t, 30*time.Second, func() bool { d, _ := e.doc(2); return d.Version == 3 }, "order 2 not at version 3")
	testinfra.Eventually(t, 30*time.Second, func() bool { return len(external.all()) == want+1 },
		"%d external events after one more version, want %d", len(external.all()), want+1)
	testinfra.Eventually(t, 10*time.Second, func() bool {
		return testinfra.MetricSum(t, svc.HTTPAddr(), `orderflow_projector_events_total{result="applied"}`) >= float64(len(msgs))
	}, "the applied-events metric does not count the %d events", len(msgs))
}

// An event whose order is not on its shard (purged) is skipped and counted,
// and consumption goes on; poison goes to the dead-letter topic at once with
// the reason in its headers: a message that is not an order event, an event
// of an unknown type, and the events of an order whose row fails validation
// when re-read. The other events of the batch are applied.
func TestMissingOrdersAreSkippedAndPoisonIsDeadLettered(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testinfra.Shards(t, 1))
	dlq := e.collect(e.dlq)
	cfg := e.config()
	cfg.Lanes, cfg.BatchLinger, cfg.MaxAttempts = 1, 300*time.Millisecond, 100 // one batch; poison must not wait for attempts
	svc, _ := e.start(cfg)
	gone := order{no: 999, version: 1}
	kept, alsoKept, broken := order{no: 5, version: 1}, order{no: 6, version: 1}, order{no: 7, version: 1}
	for _, o := range []order{kept, alsoKept, broken} {
		e.writeOrder(o)
	}
	e.exec(`DELETE FROM order_items WHERE order_no = ?`, broken.no) // an order without items cannot be projected
	unknown := internalEvent(kept, 1)
	var ev eventsv1.OrderEvent
	if err := proto.Unmarshal(unknown.Value.(sarama.ByteEncoder), &ev); err != nil {
		t.Fatal(err)
	}
	ev.EventType = "OrderEaten"
	value, _ := proto.Marshal(&ev)
	unknown.Value = sarama.ByteEncoder(value)
	e.produce(internalEvent(gone, 1),
		&sarama.ProducerMessage{Key: sarama.StringEncoder("5"), Value: sarama.ByteEncoder("not a protobuf \xff\xfe")},
		unknown, internalEvent(broken, 1), internalEvent(kept, 1), internalEvent(alsoKept, 1))
	for _, no := range []int64{kept.no, alsoKept.no} {
		testinfra.Eventually(t, 30*time.Second, func() bool { _, ok := e.doc(no); return ok }, "order %d, next to the bad events, was not projected", no)
	}
	for _, no := range []int64{gone.no, broken.no} {
		if _, ok := e.doc(no); ok {
			t.Errorf("a document was written for order %d", no)
		}
	}
	testinfra.Eventually(t, 10*time.Second, func() bool {
		return testinfra.MetricSum(t, svc.HTTPAddr(), "orderflow_projector_missing_orders_total") == 1
	}, "the missing order was not counted")
	testinfra.Eventually(t, 30*time.Second, func() bool { return len(dlq.all()) == 3 }, "%d dead letters, want 3", len(dlq.all()))
	byReason := map[string]map[string]string{}
	for _, m := range dlq.all() {
		headers := map[string]string{}
		for _, h := range m.Headers {
			headers[string(h.Key)] = string(h.Value)
		}
		if headers["dlq-error"] == "" || headers["dlq-source"] == "" || headers["dlq-at"] == "" || headers["dlq-attempts"] != "1" {
			t.Errorf("dead letter headers %v", headers)
		}
		headers["value"] = string(m.Value)
		byReason[headers["dlq-reason"]] = headers
	}
	want := map[string]struct{ eventType, orderNo, value string }{
		"undecodable":        {"", "", "not a protobuf \xff\xfe"},
		"unknown_event_type": {"OrderEaten", "5", string(value)},
		"invalid_order":      {"OrderPlaced", "7", ""},
	}
	for reason, w := range want {
		h, ok := byReason[reason]
		if !ok {
			t.Errorf("no dead letter with dlq-reason %s (got %v)", reason, byReason)
			continue
		}
		if h["dlq-event-type"] != w.eventType || h["dlq-order-no"] != w.orderNo || (w.value != "" && h["value"] != w.value) {
			t.Errorf("dead letter %s: headers %v, want event type %q, order %q", reason, h, w.eventType, w.orderNo)
		}
		testinfra.Eventually(t, 10*time.Second, func() bool {
			return testinfra.MetricSum(t, svc.HTTPAddr(), `orderflow_projector_dead_letters_total{reason="`+reason+`"}`) == 1
		}, "dead letters with reason %s not counted once", reason)
	}
	if got := testinfra.MetricSum(t, svc.HTTPAddr(), "orderflow_projector_failures_total"); got != 0 {
		t.Errorf("%v attempts spent on poison, want none", got)
	}
}

// Two projectors in one group share the partitions and together project
// every order.
func TestTwoProjectorsSharePartitions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testinfra.Shards(t, 2))
	msgs := e.placedOrders(200)
	a, _ := e.start(e.config())
	b, _ := e.start(e.config())
	testinfra.Eventually(t, 30*time.Second, func() bool {
		pa := testinfra.MetricSum(t, a.HTTPAddr(), "orderflow_projector_assigned_partitions")
		pb := testinfra.MetricSum(t, b.HTTPAddr(), "orderflow_projector_assigned_partitions")
		return pa > 0 && pb > 0 && pa+pb == 4
	}, "the two projectors never split the 4 partitions")
	e.produce(msgs...)
	testinfra.Eventually(t, 60*time.Second, func() bool {
		n, _ := e.db.Collection("orders").CountDocuments(t.Context(), map[string]any{})
		return n == 200
	}, "not every order projected")
	// A batch is counted once its write returns, a moment after its
	// documents are visible.
	var ma, mb float64
	testinfra.Eventually(t, 30*time.Second, func() bool {
		ma = testinfra.MetricSum(t, a.HTTPAddr(), `orderflow_projector_events_total{result="applied"}`)
		mb = testinfra.MetricSum(t, b.HTTPAddr(), `orderflow_projector_events_total{result="applied"}`)
		return ma+mb >= 200
	}, "the projectors counted %v and %v applied events, want 200 together", ma, mb)
	if ma == 0 || mb == 0 {
		t.Errorf("projector a applied %v events, b %v: want both to share the 200", ma, mb)
	}
}

// A lane batches the events of all its partitions together, and once they
// are applied every partition's offset is committed.
func TestALaneBatchesAcrossPartitionsAndCommitsEach(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testinfra.Shards(t, 2))
	msgs := e.placedOrders(40)
	e.produce(msgs...) // spread over the 4 partitions by key
	cfg := e.config()
	cfg.Lanes, cfg.BatchLinger = 1, 300*time.Millisecond // a linger no scheduling delay outlasts
	p, stop := e.start(cfg)
	testinfra.Eventually(t, 30*time.Second, func() bool {
		return testinfra.MetricSum(t, p.HTTPAddr(), `orderflow_projector_events_total{result="applied"}`) == 40
	}, "not every event applied")
	if batches := testinfra.MetricSum(t, p.HTTPAddr(), "orderflow_projector_batch_events_count"); batches < 1 || batches >= 4 {
		t.Errorf("%v batches for 40 events on 4 partitions: want fewer batches than partitions", batches)
	}
	stop()

	client, err := sarama.NewClient(testinfra.KafkaBrokers(), kafkax.NewConfig("projector-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	parts := []int32{0, 1, 2, 3}
	committed, err := admin.ListConsumerGroupOffsets(e.group, map[string][]int32{e.internal: parts})
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range parts {
		end, err := client.GetOffset(e.internal, part, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if got := committed.GetBlock(e.internal, part); got == nil || got.Offset != end {
			t.Errorf("partition %d: committed %+v, want offset %d (everything applied)", part, got, end)
		}
	}
}
