package domain_test

import (
	"errors"
	"math"
	"math/big"
	"testing"
	"unicode/utf8"

	"github.com/orderflow/orderflow/services/order-command/internal/domain"
	"github.com/orderflow/orderflow/shared/validation"
)

// FuzzValidatePlaceRequest checks the promises of PlaceRequest.Validate for
// any request: it never panics, it either returns a total or names at least
// one bad field, and a request it accepts is within every limit and has a
// total that is the exact sum of its lines (so no overflow slips through).
func FuzzValidatePlaceRequest(f *testing.F) {
	// requestID, userID, shopID, address, itemCount, quantity, altQuantity,
	// unitPrice, altUnitPrice, name
	f.Add("req-1", "user-1", "shop-1", "1 Main Street", byte(2), int32(2), int32(1), int64(12000), int64(3500), "Bibimbap")
	f.Add("", "", "", "", byte(0), int32(0), int32(0), int64(0), int64(0), "")
	f.Add("req-1", "user-1", "shop-1", "addr", byte(100), int32(999), int32(999), int64(0), int64(0), "x")
	f.Add("req-1", "user-1", "shop-1", "addr", byte(101), int32(1), int32(1), int64(1), int64(1), "x")
	f.Add("req-1", "user-1", "shop-1", "addr", byte(2), int32(999), int32(999),
		int64(math.MaxInt64/999), int64(math.MaxInt64/999), "x")
	f.Add("req-1", "user-1", "shop-1", "addr", byte(2), int32(1), int32(1), int64(math.MaxInt64-1), int64(1), "x")
	f.Add("req-1", "user-1", "shop-1", "addr", byte(2), int32(1), int32(1), int64(math.MaxInt64), int64(1), "x")
	f.Add("req-1", "user-1", "shop-1", "addr", byte(3), int32(1000), int32(-1), int64(-1), int64(math.MinInt64), "x")
	f.Add("주문주문", "사용자", "가게", "서울시 중구", byte(1), int32(1), int32(1), int64(9000), int64(0), "김치찌개")
	f.Add("req-\xff", "user\x00", "shop-1", "addr\xfe", byte(1), int32(1), int32(1), int64(1), int64(1), "\xc3")
	f.Add("req-1", "user-1", "shop-1", "addr", byte(120), int32(math.MaxInt32), int32(math.MinInt32),
		int64(math.MaxInt64), int64(math.MinInt64), "x")

	f.Fuzz(func(t *testing.T, requestID, userID, shopID, address string, itemCount byte,
		quantity, altQuantity int32, unitPrice, altUnitPrice int64, name string) {
		n := int(itemCount) % 121 // 0..120, around the limit of 100
		r := domain.PlaceRequest{
			RequestID:       requestID,
			UserID:          userID,
			ShopID:          shopID,
			DeliveryAddress: address,
		}
		if n > 0 {
			r.Items = make([]domain.Item, n)
		}
		for i := range r.Items {
			// Alternate two shapes of item so that lines differ.
			it := domain.Item{MenuID: requestID, Name: name, Quantity: quantity, UnitPrice: unitPrice}
			if i%2 == 1 {
				it = domain.Item{MenuID: "m-" + shopID, Name: name + "-2", Quantity: altQuantity, UnitPrice: altUnitPrice}
			}
			r.Items[i] = it
		}

		total, err := r.Validate()

		// The exact sum of the lines that are valid on their own; Validate
		// must call the request too large exactly when this exceeds MaxInt64.
		sum := new(big.Int)
		for _, it := range r.Items {
			if it.Quantity >= domain.MinQuantity && it.Quantity <= domain.MaxQuantity && it.UnitPrice >= 0 {
				sum.Add(sum, new(big.Int).Mul(big.NewInt(int64(it.Quantity)), big.NewInt(it.UnitPrice)))
			}
		}
		countOK := len(r.Items) >= 1 && len(r.Items) <= domain.MaxItems
		tooLarge := countOK && sum.Cmp(big.NewInt(math.MaxInt64)) > 0

		if err != nil {
			var ve *validation.Error
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() error = %v (%T), want a *validation.Error", err, err)
			}
			if total != 0 {
				t.Errorf("Validate() = %d alongside an error, want 0", total)
			}
			if len(ve.Violations) == 0 {
				t.Fatalf("Validate() returned a ValidationError without violations")
			}
			overflowReported := false
			for _, v := range ve.Violations {
				if v.Field == "" || v.Description == "" {
					t.Errorf("violation %+v has an empty field or description", v)
				}
				if v.Field == "items" && countOK {
					overflowReported = true
				}
			}
			if overflowReported != tooLarge {
				t.Errorf("overflow reported = %v, but the valid lines sum to %s (MaxInt64 %d)",
					overflowReported, sum, int64(math.MaxInt64))
			}
			return
		}

		if tooLarge {
			t.Fatalf("Validate() accepted a request whose lines sum to %s", sum)
		}
		if !countOK {
			t.Fatalf("Validate() accepted %d items, want 1..%d", len(r.Items), domain.MaxItems)
		}
		for i, it := range r.Items {
			if it.Quantity < domain.MinQuantity || it.Quantity > domain.MaxQuantity {
				t.Errorf("Validate() accepted items[%d].quantity %d", i, it.Quantity)
			}
			if it.UnitPrice < 0 {
				t.Errorf("Validate() accepted items[%d].unitPrice %d", i, it.UnitPrice)
			}
			if it.MenuID == "" || utf8.RuneCountInString(it.MenuID) > domain.MaxIDLength || !utf8.ValidString(it.MenuID) {
				t.Errorf("Validate() accepted items[%d].menuId %q", i, it.MenuID)
			}
			if c := utf8.RuneCountInString(it.Name); c == 0 || c > domain.MaxNameLength {
				t.Errorf("Validate() accepted items[%d].name of %d characters", i, c)
			}
		}
		for field, id := range map[string]string{"requestId": requestID, "userId": userID, "shopId": shopID} {
			if id == "" || utf8.RuneCountInString(id) > domain.MaxIDLength || !utf8.ValidString(id) {
				t.Errorf("Validate() accepted %s %q", field, id)
			}
		}
		if c := utf8.RuneCountInString(address); c == 0 || c > domain.MaxAddressLength {
			t.Errorf("Validate() accepted a deliveryAddress of %d characters", c)
		}
		if total < 0 {
			t.Errorf("Validate() = %d, want a total >= 0", total)
		}
		if !sum.IsInt64() || sum.Int64() != total {
			t.Errorf("Validate() = %d, want the exact sum %s", total, sum)
		}
	})
}
