package domain

import (
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/orderflow/orderflow/shared/validation"
)

// Limits of a valid request.
const (
	MaxIDLength      = 64
	MaxItems         = 100
	MinQuantity      = 1
	MaxQuantity      = 999
	MaxNameLength    = 200
	MaxAddressLength = 512
	MaxReasonLength  = 512
)

// Validate checks a place request and returns its total amount, or a
// *validation.Error naming every bad field.
func (r PlaceRequest) Validate() (int64, error) {
	var v validation.Violations
	add := func(field, format string, args ...any) { v.Add(field, fmt.Sprintf(format, args...)) }
	checkID := func(field, value string) {
		if value == "" {
			add(field, "must not be empty")
		} else if n := utf8.RuneCountInString(value); n > MaxIDLength {
			add(field, "must be at most %d characters, got %d", MaxIDLength, n)
		} else if !utf8.ValidString(value) {
			add(field, "must be valid UTF-8")
		}
	}
	checkID("requestId", r.RequestID)
	checkID("userId", r.UserID)
	checkID("shopId", r.ShopID)
	switch n := utf8.RuneCountInString(r.DeliveryAddress); {
	case n == 0:
		add("deliveryAddress", "must not be empty")
	case n > MaxAddressLength:
		add("deliveryAddress", "must be at most %d characters, got %d", MaxAddressLength, n)
	}

	var total int64
	overflow := false
	switch {
	case len(r.Items) == 0:
		add("items", "must contain at least one item")
	case len(r.Items) > MaxItems:
		add("items", "must contain at most %d items, got %d", MaxItems, len(r.Items))
	default:
		for i, it := range r.Items {
			field := func(name string) string { return fmt.Sprintf("items[%d].%s", i, name) }
			checkID(field("menuId"), it.MenuID)
			if n := utf8.RuneCountInString(it.Name); n == 0 {
				add(field("name"), "must not be empty")
			} else if n > MaxNameLength {
				add(field("name"), "must be at most %d characters, got %d", MaxNameLength, n)
			}
			qtyOK := it.Quantity >= MinQuantity && it.Quantity <= MaxQuantity
			if !qtyOK {
				add(field("quantity"), "must be between %d and %d, got %d", MinQuantity, MaxQuantity, it.Quantity)
			}
			if it.UnitPrice < 0 {
				add(field("unitPrice"), "must not be negative, got %d", it.UnitPrice)
			}
			if !qtyOK || it.UnitPrice < 0 || overflow {
				continue
			}
			if it.UnitPrice > math.MaxInt64/int64(it.Quantity) {
				overflow = true
				continue
			}
			line := it.UnitPrice * int64(it.Quantity)
			if total > math.MaxInt64-line {
				overflow = true
				continue
			}
			total += line
		}
	}
	if overflow {
		add("items", "total amount exceeds %d", int64(math.MaxInt64))
	}
	if err := v.Err(); err != nil {
		return 0, err
	}
	return total, nil
}

// ValidateReason checks a cancellation reason.
func ValidateReason(reason string) error {
	switch n := utf8.RuneCountInString(reason); {
	case n == 0:
		return validation.Invalid("reason", "must not be empty")
	case n > MaxReasonLength:
		return validation.Invalid("reason", fmt.Sprintf("must be at most %d characters, got %d", MaxReasonLength, n))
	}
	return nil
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
