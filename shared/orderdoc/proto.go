package orderdoc

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/orderenum"
)

// Proto is the one conversion of an order document to its API message: the
// query service answers with it, and the projector's external events carry
// it (of the document as of each version), so both show an order the same
// way.
func Proto(d *Document) *orderv1.Order {
	items := make([]*orderv1.OrderItem, len(d.Items))
	for i, it := range d.Items {
		items[i] = &orderv1.OrderItem{MenuId: it.MenuID, Name: it.Name, Quantity: it.Quantity, UnitPrice: it.UnitPrice}
	}
	history := make([]*orderv1.StatusChange, len(d.StatusHistory))
	for i, c := range d.StatusHistory {
		history[i] = &orderv1.StatusChange{Status: statusEnum(c.Status), Version: c.Version, ChangedAt: timestamppb.New(c.ChangedAt)}
	}
	return &orderv1.Order{
		OrderNo: d.OrderNo, Status: statusEnum(d.Status), UserId: d.UserID, ShopId: d.ShopID,
		Items: items, TotalAmount: d.TotalAmount, PlacedAt: timestamppb.New(d.PlacedAt), Version: d.Version,
		DeliveryAddress: d.DeliveryAddress, UpdatedAt: timestamppb.New(d.UpdatedAt), CancelReason: d.CancelReason,
		StatusHistory: history,
	}
}

// statusEnum maps a document's status name; a name this build does not
// know becomes STATUS_UNSPECIFIED rather than failing the read.
func statusEnum(name string) orderv1.Order_Status {
	s, _ := orderenum.ParseStatus(name)
	return s
}
