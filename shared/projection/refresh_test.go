package projection_test

import (
	"context"
	"testing"
	"time"

	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	"github.com/orderflow/orderflow/shared/orderdoc"
	"github.com/orderflow/orderflow/shared/projection"
	"github.com/orderflow/orderflow/shared/projection/source"
)

// fakeSource finds an order only once the topology was refreshed.
type fakeSource struct{ refreshed bool }

func (f *fakeSource) Read(_ context.Context, nos []int64) (map[int64]source.Order, error) {
	out := map[int64]source.Order{}
	if f.refreshed {
		o := cancelledOrder()
		o.OrderNo = nos[0]
		out[nos[0]] = o
	}
	return out, nil
}

type fakeStore struct{ written []orderdoc.Document }

func (f *fakeStore) States(context.Context, []int64) (map[int64]projection.DocState, error) {
	return map[int64]projection.DocState{}, nil
}
func (f *fakeStore) Write(_ context.Context, w projection.Write) (int, error) {
	f.written = append(f.written, w.Docs...)
	return 0, nil
}

type noExternal struct{}

func (noExternal) Publish(context.Context, []*eventsv1.OrderExternalEvent) error { return nil }

// An order missing from the shard its number routes to may be on a shard
// added a moment ago: the topology is reloaded and the order read again
// before it is counted as missing.
func TestMissingOrderTriggersATopologyRefresh(t *testing.T) {
	t.Parallel()
	src, store := &fakeSource{}, &fakeStore{}
	refreshes := 0
	p := projection.New(src, store, noExternal{}, time.Now, func() bool {
		refreshes++
		src.refreshed = true
		return true
	})
	res, err := p.Project(context.Background(), []*eventsv1.OrderEvent{{OrderNo: 77, OrderVersion: 3, EventType: "OrderCancelled"}})
	if err != nil {
		t.Fatal(err)
	}
	if refreshes != 1 || len(res.Missing) != 0 || len(store.written) != 1 || store.written[0].OrderNo != 77 {
		t.Errorf("refreshes %d, result %+v, written %d: want the order found after one refresh", refreshes, res, len(store.written))
	}

	// Without a new topology the order stays missing.
	src2, store2 := &fakeSource{}, &fakeStore{}
	p2 := projection.New(src2, store2, noExternal{}, time.Now, func() bool { return false })
	res, err = p2.Project(context.Background(), []*eventsv1.OrderEvent{{OrderNo: 78, OrderVersion: 1, EventType: "OrderPlaced"}})
	if err != nil || len(res.Missing) != 1 || len(store2.written) != 0 {
		t.Errorf("result %+v (%v), want order 78 counted missing", res, err)
	}
}
