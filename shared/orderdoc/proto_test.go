package orderdoc_test

import (
	"testing"
	"time"

	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/orderdoc"
)

func TestProtoStatusNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want orderv1.Order_Status
	}{
		{"PLACED", orderv1.Order_PLACED},
		{"ACCEPTED", orderv1.Order_ACCEPTED},
		{"DELIVERING", orderv1.Order_DELIVERING},
		{"DELIVERED", orderv1.Order_DELIVERED},
		{"CANCELLED", orderv1.Order_CANCELLED},
		{"SOMETHING_NEW", orderv1.Order_STATUS_UNSPECIFIED},
		{"", orderv1.Order_STATUS_UNSPECIFIED},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := orderdoc.Proto(&orderdoc.Document{OrderNo: 1, Status: tc.name,
				StatusHistory: []orderdoc.StatusChange{{Status: tc.name, Version: 1}}})
			if o.GetStatus() != tc.want || o.GetStatusHistory()[0].GetStatus() != tc.want {
				t.Errorf("status %s, history %s, want %s", o.GetStatus(), o.GetStatusHistory()[0].GetStatus(), tc.want)
			}
		})
	}
}

func TestProtoFields(t *testing.T) {
	t.Parallel()
	placed := time.Date(2026, 12, 1, 12, 0, 0, 123456000, time.UTC)
	d := orderdoc.Document{
		OrderNo: 42, UserID: "u-1", ShopID: "s-1", Status: "CANCELLED", TotalAmount: 18000, DeliveryAddress: "1 Teheran-ro",
		PlacedAt: placed, UpdatedAt: placed.Add(time.Minute), CancelReason: "changed my mind", Version: 2,
		Items: []orderdoc.Item{{MenuID: "m-1", Name: "Bibimbap", Quantity: 2, UnitPrice: 9000}},
		StatusHistory: []orderdoc.StatusChange{{Status: "PLACED", Version: 1, ChangedAt: placed},
			{Status: "CANCELLED", Version: 2, ChangedAt: placed.Add(time.Minute)}},
	}
	o := orderdoc.Proto(&d)
	switch {
	case o.GetOrderNo() != 42 || o.GetUserId() != "u-1" || o.GetShopId() != "s-1" || o.GetTotalAmount() != 18000 ||
		o.GetDeliveryAddress() != "1 Teheran-ro" || o.GetCancelReason() != "changed my mind" || o.GetVersion() != 2:
		t.Errorf("scalar fields not carried over: %v", o)
	case !o.GetPlacedAt().AsTime().Equal(placed) || !o.GetUpdatedAt().AsTime().Equal(placed.Add(time.Minute)):
		t.Errorf("times %s / %s, want %s / %s", o.GetPlacedAt().AsTime(), o.GetUpdatedAt().AsTime(), placed, placed.Add(time.Minute))
	case len(o.GetItems()) != 1 || o.GetItems()[0].GetMenuId() != "m-1" || o.GetItems()[0].GetQuantity() != 2 || o.GetItems()[0].GetUnitPrice() != 9000:
		t.Errorf("items %v", o.GetItems())
	case len(o.GetStatusHistory()) != 2 || o.GetStatusHistory()[1].GetStatus() != orderv1.Order_CANCELLED || o.GetStatusHistory()[1].GetVersion() != 2:
		t.Errorf("history %v", o.GetStatusHistory())
	}
}
