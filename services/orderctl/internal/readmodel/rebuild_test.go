package readmodel_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/orderflow/orderflow/services/orderctl/internal/orderstest"
	"github.com/orderflow/orderflow/services/orderctl/internal/readmodel"
	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	"github.com/orderflow/orderflow/shared/projection"
	"github.com/orderflow/orderflow/shared/projection/docstore"
	"github.com/orderflow/orderflow/shared/projection/external"
	"github.com/orderflow/orderflow/shared/projection/source"
	"github.com/orderflow/orderflow/shared/testinfra"
)

var placed = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// fixture is two shards with orders 1..n, an empty read side and an
// external topic, wired through the projector's own code.
type fixture struct {
	shards   *orderstest.Shards
	rebuild  *readmodel.Rebuilder
	mdb      func() map[int64]int32
	extTopic string
}

func newFixture(t *testing.T, n int64, batch int) *fixture {
	t.Helper()
	s := orderstest.NewShards(t)
	for no := int64(1); no <= n; no++ {
		s.Put(t, no, int32(1+no%4), placed.Add(time.Duration(no)*time.Hour))
	}
	pools := testinfra.OpenShards(t, s.Topology)
	mdb := testinfra.MongoDatabase(t)
	topic := testinfra.KafkaTopic(t, 1)
	producer, err := external.NewProducer(external.ProducerConfig{Brokers: testinfra.KafkaBrokers(), ClientID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = producer.Close() })
	p := projection.New(source.NewReader(pools), docstore.NewStore(mdb), external.NewPublisher(producer, topic), time.Now, nil)
	applier, err := readmodel.NewApplier(p, readmodel.ApplyConfig{MaxWait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := readmodel.NewRebuilder(pools, applier, readmodel.NewCheckpoints(mdb, time.Now), readmodel.Config{Batch: batch})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{shards: s, rebuild: rb, extTopic: topic, mdb: func() map[int64]int32 { return orderstest.Versions(t, mdb) }}
}

// want is every order's version as Put wrote it.
func want(n int64) map[int64]int32 {
	out := map[int64]int32{}
	for no := int64(1); no <= n; no++ {
		out[no] = int32(1 + no%4)
	}
	return out
}

func externalCount(t *testing.T, topic string) int64 {
	t.Helper()
	client, err := sarama.NewClient(testinfra.KafkaBrokers(), sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	n, err := client.GetOffset(topic, 0, sarama.OffsetNewest)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A rebuild cancelled after its first batch resumes from the checkpoint
// without redoing the done batch; a run without --resume starts over.
func TestRebuildResumesFromCheckpoint(t *testing.T) {
	t.Parallel()
	const n = 14
	f := newFixture(t, n, 3)
	ctx, cancel := context.WithCancel(context.Background())
	var first []int64
	_, err := f.rebuild.Run(ctx, readmodel.Options{}, readmodel.Hooks{Batch: func(_ string, nos []int64) {
		if first == nil {
			first = slices.Clone(nos)
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v, want context.Canceled", err)
	}
	if got := f.mdb(); len(got) != len(first) {
		t.Fatalf("after the first batch %v: documents %v", first, got)
	}

	var mu sync.Mutex
	var total int64
	var again []int64
	rep, err := f.rebuild.Run(context.Background(), readmodel.Options{Resume: true}, readmodel.Hooks{
		Counted: func(n int64) { total = n },
		Batch: func(_ string, nos []int64) {
			mu.Lock()
			defer mu.Unlock()
			again = append(again, nos...)
		}})
	if err != nil {
		t.Fatal(err)
	}
	for _, no := range first {
		if slices.Contains(again, no) {
			t.Errorf("resumed run redid order %d of the done batch %v (it did %v)", no, first, again)
		}
	}
	if total != n-int64(len(first)) || len(again) != n-len(first) || rep.Resumed["shard-0"] == 0 {
		t.Errorf("resumed run counted %d and did %d orders (resumed %v), want %d", total, len(again), rep.Resumed, n-len(first))
	}
	if got := f.mdb(); !maps.Equal(got, want(n)) {
		t.Errorf("documents %v, want %v", got, want(n))
	}
	// Versions 1..(1+no%4) of every order went out once each.
	var events int64
	for _, v := range want(n) {
		events += int64(v)
	}
	if got := externalCount(t, f.extTopic); got != events {
		t.Errorf("%d external events, want %d", got, events)
	}

	// Resuming a finished run does nothing; a fresh run goes over everything
	// again and changes nothing (all current).
	var redo int
	rep, err = f.rebuild.Run(context.Background(), readmodel.Options{Resume: true}, readmodel.Hooks{Batch: func(string, []int64) { redo++ }})
	if err != nil || redo != 0 || rep.Orders != 0 {
		t.Errorf("resuming a finished run: %d batches, %+v, %v", redo, rep, err)
	}
	rep, err = f.rebuild.Run(context.Background(), readmodel.Options{}, readmodel.Hooks{})
	if err != nil || rep.Orders != n || rep.Current != n || rep.Projected != 0 || rep.External != 0 {
		t.Errorf("fresh run over a current read side: %+v, %v; want %d current", rep, err, n)
	}
	// A checkpoint of other options is not resumed.
	if _, err := f.rebuild.Run(context.Background(), readmodel.Options{Resume: true, Since: placed}, readmodel.Hooks{}); err == nil || !strings.Contains(err.Error(), "other options") {
		t.Errorf("resuming with another --since: %v, want a refusal", err)
	}
}

// Since, one shard and an order list each limit what is re-projected.
func TestRebuildSelection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(*readmodel.Rebuilder) (readmodel.Report, error)
		want []int64
	}{
		{name: "since", want: []int64{8, 9, 10},
			run: func(r *readmodel.Rebuilder) (readmodel.Report, error) {
				return r.Run(context.Background(), readmodel.Options{Since: placed.Add(8 * time.Hour)}, readmodel.Hooks{})
			}},
		{name: "one shard", want: []int64{2, 4, 6, 8, 10},
			run: func(r *readmodel.Rebuilder) (readmodel.Report, error) {
				return r.Run(context.Background(), readmodel.Options{Shards: []string{"shard-0"}}, readmodel.Hooks{})
			}},
		{name: "orders", want: []int64{3, 7},
			run: func(r *readmodel.Rebuilder) (readmodel.Report, error) {
				return r.Orders(context.Background(), []int64{3, 7, 99}, readmodel.Hooks{})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, 10, 2)
			if _, err := tt.run(f.rebuild); err != nil {
				t.Fatal(err)
			}
			got := f.mdb()
			all := want(10)
			exp := map[int64]int32{}
			for _, no := range tt.want {
				exp[no] = all[no]
			}
			if !maps.Equal(got, exp) {
				t.Errorf("documents %v, want %v", got, exp)
			}
		})
	}
}

// An apply that keeps failing gives up after MaxWait with the error.
func TestApplyGivesUp(t *testing.T) {
	t.Parallel()
	calls := 0
	a, err := readmodel.NewApplier(failing{&calls}, readmodel.ApplyConfig{MaxWait: 300 * time.Millisecond, InitialWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Apply(context.Background(), []int64{1}); err == nil || !strings.Contains(err.Error(), "mongo down") || calls < 2 {
		t.Errorf("Apply: %v after %d calls, want the last error after retries", err, calls)
	}
}

type failing struct{ calls *int }

func (f failing) Project(context.Context, []*eventsv1.OrderEvent) (projection.Result, error) {
	*f.calls++
	return projection.Result{}, errors.New("mongo down")
}
