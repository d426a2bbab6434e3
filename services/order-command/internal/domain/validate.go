package domain

import (
	"fmt"

	"github.com/orderflow/orderflow/shared/validation"
)

// Limits of a valid request. Identifiers follow validation.IDPattern; the
// lengths of the free-text fields are those of their columns on the shards
// (migrations/sql), counted in characters as utf8mb4 columns count them.
// An item's name is one line; an address and a reason may have line breaks
// (validation.Text).
const (
	MaxIDLength      = validation.MaxIDLength
	MaxItems         = 100
	MinQuantity      = 1
	MaxQuantity      = 999
	MaxNameLength    = 200
	MaxAddressLength = 512
	MaxReasonLength  = 512
	// MinUnitPrice and MaxUnitPrice bound an item's price in won: nothing
	// on a food-delivery menu is free or costs more than a million.
	MinUnitPrice = 1
	MaxUnitPrice = 1_000_000
	// MaxTotalAmount bounds an order's total in won, so a consumer summing
	// the totals of many orders in an int64 cannot overflow.
	MaxTotalAmount = 10_000_000
)

// Validate checks a place request and returns its total amount, or a
// *validation.Error naming every bad field.
func (r PlaceRequest) Validate() (int64, error) {
	var v validation.Violations
	validation.CheckID(&v, "requestId", r.RequestID)
	validation.CheckID(&v, "userId", r.UserID)
	validation.CheckID(&v, "shopId", r.ShopID)
	validation.Text{MaxChars: MaxAddressLength, Multiline: true}.Check(&v, "deliveryAddress", r.DeliveryAddress)

	switch {
	case len(r.Items) == 0:
		v.Add("items", "must contain at least one item")
	case len(r.Items) > MaxItems:
		v.Add("items", fmt.Sprintf("must contain at most %d items, got %d", MaxItems, len(r.Items)))
	default:
		// With at most MaxItems lines of at most MaxQuantity * MaxUnitPrice
		// each, the sum of the valid lines cannot overflow an int64.
		var total int64
		for i, it := range r.Items {
			field := func(name string) string { return fmt.Sprintf("items[%d].%s", i, name) }
			validation.CheckID(&v, field("menuId"), it.MenuID)
			validation.Text{MaxChars: MaxNameLength}.Check(&v, field("name"), it.Name)
			qtyOK := it.Quantity >= MinQuantity && it.Quantity <= MaxQuantity
			if !qtyOK {
				v.Add(field("quantity"), fmt.Sprintf("must be between %d and %d, got %d", MinQuantity, MaxQuantity, it.Quantity))
			}
			priceOK := it.UnitPrice >= MinUnitPrice && it.UnitPrice <= MaxUnitPrice
			if !priceOK {
				v.Add(field("unitPrice"), fmt.Sprintf("must be between %d and %d won, got %d", MinUnitPrice, MaxUnitPrice, it.UnitPrice))
			}
			if qtyOK && priceOK {
				total += it.UnitPrice * int64(it.Quantity)
			}
		}
		if total > MaxTotalAmount {
			v.Add("items", fmt.Sprintf("total amount (the sum of quantity * unitPrice) must be at most %d won, got %d", MaxTotalAmount, total))
		}
		if err := v.Err(); err != nil {
			return 0, err
		}
		return total, nil
	}
	return 0, v.Err()
}

// ValidateReason checks a cancellation reason.
func ValidateReason(reason string) error {
	var v validation.Violations
	validation.Text{MaxChars: MaxReasonLength, Multiline: true}.Check(&v, "reason", reason)
	return v.Err()
}

// ValidateOrderNo checks an order number from a request.
func ValidateOrderNo(no int64) error {
	if no < 1 {
		return validation.Invalid("orderNo", fmt.Sprintf("must be a positive number, got %d", no))
	}
	return nil
}

// ValidateTargetStatus checks the status an advance asks for.
func ValidateTargetStatus(s Status) error {
	if !s.Known() {
		return validation.Invalid("status", "must be a known status: ACCEPTED, DELIVERING or DELIVERED (an order advances one step at a time)")
	}
	return nil
}
