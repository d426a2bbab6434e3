package projection_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	"github.com/orderflow/orderflow/shared/projection"
	"github.com/orderflow/orderflow/shared/projection/source"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		change     func(o *source.Order)
		wantReason string // empty: valid
	}{
		{name: "a cancelled order", change: func(*source.Order) {}},
		{name: "a placed order", change: func(o *source.Order) {
			o.Status, o.Version, o.CancelReason, o.History = "PLACED", 1, "", o.History[:1]
		}},
		{name: "a free item", change: func(o *source.Order) { o.Items[1].UnitPrice = 0 }},
		{name: "a gap in the history", change: func(o *source.Order) { o.History = append(o.History[:1], o.History[2]) }},
		{name: "order number zero", change: func(o *source.Order) { o.OrderNo = 0 }, wantReason: "order number"},
		{name: "version zero", change: func(o *source.Order) { o.Version = 0 }, wantReason: "version 0"},
		{name: "unknown status", change: func(o *source.Order) { o.Status = "LOST" }, wantReason: `unknown status "LOST"`},
		{name: "no user", change: func(o *source.Order) { o.UserID = "" }, wantReason: "no user"},
		{name: "no items", change: func(o *source.Order) { o.Items = nil }, wantReason: "no items"},
		{name: "item without quantity", change: func(o *source.Order) { o.Items[0].Quantity = 0 }, wantReason: "item 1"},
		{name: "negative price", change: func(o *source.Order) { o.Items[1].UnitPrice = -1 }, wantReason: "item 2"},
		{name: "no history", change: func(o *source.Order) { o.History = nil }, wantReason: "no status history"},
		{name: "history without the current version", change: func(o *source.Order) { o.History = o.History[:2] },
			wantReason: "lacks version 3"},
		{name: "history disagreeing with the status", change: func(o *source.Order) { o.History[2].Status = "DELIVERED" },
			wantReason: "history version 3 is DELIVERED"},
		{name: "unknown status in the history", change: func(o *source.Order) { o.History[0].Status = "NEW" },
			wantReason: `history version 1: unknown status "NEW"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := cancelledOrder()
			tt.change(&o)
			err := projection.Validate(o)
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ie *projection.InvalidOrderError
			if !errors.As(err, &ie) || ie.OrderNo != o.OrderNo || !strings.Contains(ie.Reason, tt.wantReason) {
				t.Fatalf("Validate() = %v, want an InvalidOrderError for order %d with %q", err, o.OrderNo, tt.wantReason)
			}
		})
	}
}

// orders is a source holding fixed orders.
type orders map[int64]source.Order

func (s orders) Read(context.Context, []int64) (map[int64]source.Order, error) { return s, nil }

// An invalid order fails its batch before anything is published or written,
// and the error names every invalid order so the caller can set them aside.
func TestProjectNamesEveryInvalidOrderAndWritesNothing(t *testing.T) {
	t.Parallel()
	good := cancelledOrder()
	noItems, noHistory := cancelledOrder(), cancelledOrder()
	noItems.OrderNo, noItems.Items = 43, nil
	noHistory.OrderNo, noHistory.History = 44, nil
	j := &journal{}
	p := projection.New(orders{42: good, 43: noItems, 44: noHistory}, j, j, time.Now, nil)
	_, err := p.Project(context.Background(), []*eventsv1.OrderEvent{{OrderNo: 42}, {OrderNo: 43}, {OrderNo: 44}})
	invalid := projection.InvalidOrders(err)
	if len(invalid) != 2 || invalid[0].OrderNo != 43 || invalid[1].OrderNo != 44 {
		t.Fatalf("Project() = %v; invalid orders %v, want 43 and 44", err, invalid)
	}
	if len(j.calls) != 0 {
		t.Errorf("calls %v, want nothing published or written", j.calls)
	}
	if _, err := p.Project(context.Background(), []*eventsv1.OrderEvent{{OrderNo: 42}}); err != nil {
		t.Errorf("Project() of the valid order alone = %v", err)
	}
}

func TestInvalidOrdersFindsNothingInOtherErrors(t *testing.T) {
	t.Parallel()
	for name, err := range map[string]error{"nil": nil, "conflict": projection.ErrConflict,
		"joined": errors.Join(errors.New("a"), context.DeadlineExceeded)} {
		if got := projection.InvalidOrders(err); len(got) != 0 {
			t.Errorf("%s: InvalidOrders() = %v", name, got)
		}
	}
}
