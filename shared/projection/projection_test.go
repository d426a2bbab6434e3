package projection_test

import (
	"testing"
	"time"

	"github.com/orderflow/orderflow/shared/projection"
	"github.com/orderflow/orderflow/shared/projection/source"
)

func cancelledOrder() source.Order {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	return source.Order{
		OrderNo: 42, Shard: "shard-0", UserID: "u", ShopID: "s", Status: "CANCELLED", TotalAmount: 19500,
		DeliveryAddress: "Seoul", CancelReason: "late", Version: 3, PlacedAt: t0, UpdatedAt: t0.Add(2 * time.Minute),
		Items: []source.Item{{MenuID: "m-1", Name: "Bibimbap", Quantity: 2, UnitPrice: 9000}, {MenuID: "m-2", Name: "Tea", Quantity: 1, UnitPrice: 1500}},
		History: []source.Change{
			{Status: "PLACED", Version: 1, ChangedAt: t0},
			{Status: "ACCEPTED", Version: 2, ChangedAt: t0.Add(time.Minute)},
			{Status: "CANCELLED", Version: 3, ChangedAt: t0.Add(2 * time.Minute)},
		},
	}
}

// The external event of each version carries the order as it was then.
func TestExternalEventRebuildsEachVersion(t *testing.T) {
	t.Parallel()
	o := cancelledOrder()
	tests := []struct {
		version       int32
		wantType      string
		wantStatus    string
		wantHistory   int
		wantReason    string
		wantUpdatedAt time.Time
	}{
		{1, "OrderPlaced", "PLACED", 1, "", o.History[0].ChangedAt},
		{2, "OrderAccepted", "ACCEPTED", 2, "", o.History[1].ChangedAt},
		{3, "OrderCancelled", "CANCELLED", 3, "late", o.History[2].ChangedAt},
	}
	ids := map[string]bool{}
	for _, tc := range tests {
		ev, ok := projection.ExternalEvent(o, tc.version)
		if !ok {
			t.Fatalf("version %d: no event", tc.version)
		}
		got := ev.GetOrder()
		if ev.GetEventType() != tc.wantType || got.GetStatus().String() != tc.wantStatus || got.GetVersion() != tc.version ||
			len(got.GetStatusHistory()) != tc.wantHistory || got.GetCancelReason() != tc.wantReason ||
			!got.GetUpdatedAt().AsTime().Equal(tc.wantUpdatedAt) || len(got.GetItems()) != 2 || got.GetTotalAmount() != 19500 {
			t.Errorf("version %d: %v", tc.version, ev)
		}
		if ev.GetEventId() != projection.ExternalEventID(42, tc.version) || ids[ev.GetEventId()] {
			t.Errorf("version %d: event id %s is not the stable, distinct id", tc.version, ev.GetEventId())
		}
		ids[ev.GetEventId()] = true
	}
	if _, ok := projection.ExternalEvent(o, 4); ok {
		t.Error("an event for a version the history does not have")
	}
}

func TestExternalEventIDIsStable(t *testing.T) {
	t.Parallel()
	if projection.ExternalEventID(7, 1) != projection.ExternalEventID(7, 1) {
		t.Error("the id of (7, 1) changes between calls")
	}
	if projection.ExternalEventID(7, 1) == projection.ExternalEventID(7, 2) || projection.ExternalEventID(7, 1) == projection.ExternalEventID(71, 1) {
		t.Error("ids of different (order, version) pairs collide")
	}
}

func TestDocumentCopiesTheCurrentState(t *testing.T) {
	t.Parallel()
	o := cancelledOrder()
	at := time.Date(2026, 11, 1, 13, 0, 0, 0, time.UTC)
	d := projection.Document(o, at)
	if d.OrderNo != 42 || d.Version != 3 || d.Status != "CANCELLED" || d.CancelReason != "late" || d.Shard != "shard-0" ||
		len(d.Items) != 2 || d.Items[1].UnitPrice != 1500 || len(d.StatusHistory) != 3 || d.StatusHistory[2].Status != "CANCELLED" ||
		!d.ProjectedAt.Equal(at) {
		t.Errorf("document %+v", d)
	}
}
