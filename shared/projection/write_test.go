package projection_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	"github.com/orderflow/orderflow/shared/projection"
	"github.com/orderflow/orderflow/shared/projection/source"
)

// oneOrder is a source holding the cancelled order (version 3).
type oneOrder struct{}

func (oneOrder) Read(context.Context, []int64) (map[int64]source.Order, error) {
	o := cancelledOrder()
	return map[int64]source.Order{o.OrderNo: o}, nil
}

// journal records the calls to the store and the external publisher in order.
type journal struct {
	state      projection.DocState
	calls      []string
	writes     []projection.Write
	published  []int32
	publishErr error
}

func (j *journal) States(context.Context, []int64) (map[int64]projection.DocState, error) {
	return map[int64]projection.DocState{42: j.state}, nil
}

func (j *journal) Write(_ context.Context, w projection.Write) (int, error) {
	j.calls = append(j.calls, "write")
	j.writes = append(j.writes, w)
	return 0, nil
}

func (j *journal) Publish(_ context.Context, events []*eventsv1.OrderExternalEvent) error {
	j.calls = append(j.calls, "publish")
	if j.publishErr != nil {
		return j.publishErr
	}
	for _, e := range events {
		j.published = append(j.published, e.GetOrder().GetVersion())
	}
	return nil
}

// External events go out before the one write that records them with the
// document, so no failure can leave a version recorded but unpublished.
func TestProjectPublishesBeforeTheWriteThatRecordsIt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		state         projection.DocState
		publishErr    error
		cancelled     bool // the consumer session ended before the publish
		wantCalls     []string
		wantPublished []int32
		wantDoc       bool  // the document is (re)written
		wantExtOnly   int32 // externalVersion raised without a document write
		wantErr       bool
	}{
		{name: "new order", wantCalls: []string{"publish", "write"}, wantPublished: []int32{1, 2, 3}, wantDoc: true},
		{name: "document behind", state: projection.DocState{Version: 1, ExternalVersion: 1},
			wantCalls: []string{"publish", "write"}, wantPublished: []int32{2, 3}, wantDoc: true},
		{name: "document current, external behind", state: projection.DocState{Version: 3, ExternalVersion: 2},
			wantCalls: []string{"publish", "write"}, wantPublished: []int32{3}, wantExtOnly: 3},
		{name: "all current", state: projection.DocState{Version: 3, ExternalVersion: 3}},
		{name: "publishing fails", state: projection.DocState{Version: 1, ExternalVersion: 1}, publishErr: errors.New("broker down"),
			wantCalls: []string{"publish"}, wantErr: true},
		{name: "session ended", state: projection.DocState{Version: 1, ExternalVersion: 1}, cancelled: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			j := &journal{state: tt.state, publishErr: tt.publishErr}
			p := projection.New(oneOrder{}, j, j, time.Now, nil)
			ctx, cancel := context.WithCancel(context.Background())
			if tt.cancelled {
				cancel()
			}
			defer cancel()
			_, err := p.Project(ctx, []*eventsv1.OrderEvent{{OrderNo: 42, OrderVersion: 3, EventType: "OrderCancelled"}})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if !slices.Equal(j.calls, tt.wantCalls) || !slices.Equal(j.published, tt.wantPublished) {
				t.Fatalf("calls %v, published versions %v; want %v, %v", j.calls, j.published, tt.wantCalls, tt.wantPublished)
			}
			if len(j.writes) == 0 {
				return
			}
			w := j.writes[0]
			if tt.wantDoc {
				if len(w.Docs) != 1 || w.Docs[0].Version != 3 || w.Docs[0].ExternalVersion != 3 || w.Read[42] != tt.state.Version {
					t.Errorf("write %+v: want the document at version 3 with externalVersion 3, read at %d", w, tt.state.Version)
				}
			} else if len(w.Docs) != 0 || w.ExternalOnly[42] != tt.wantExtOnly {
				t.Errorf("write %+v: want only externalVersion raised to %d", w, tt.wantExtOnly)
			}
		})
	}
}
