package domain_test

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/services/order-command/internal/domain"
	"github.com/orderflow/orderflow/shared/validation"
)

// violations unwraps a *validation.Error and returns the fields it names,
// in order, and the description of each.
func violations(t *testing.T, err error) ([]string, map[string]string) {
	t.Helper()
	var ve *validation.Error
	if !errors.As(err, &ve) {
		t.Fatalf("error = %v (%T), want a *validation.Error", err, err)
	}
	fields := make([]string, len(ve.Violations))
	descs := make(map[string]string, len(ve.Violations))
	for i, v := range ve.Violations {
		fields[i] = v.Field
		descs[v.Field] = v.Description
		if v.Description == "" {
			t.Errorf("violation of %q has no description", v.Field)
		}
	}
	return fields, descs
}

// checkValidation compares the outcome of a validation with the fields
// expected to be reported (none means the value must be accepted).
func checkValidation(t *testing.T, err error, wantFields []string, wantDesc map[string]string) {
	t.Helper()
	if len(wantFields) == 0 {
		if err != nil {
			t.Fatalf("error = %v, want none", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("error = nil, want violations of %q", wantFields)
	}
	fields, descs := violations(t, err)
	if !reflect.DeepEqual(fields, wantFields) {
		t.Errorf("violated fields = %q, want %q (%v)", fields, wantFields, err)
	}
	for field, part := range wantDesc {
		if !strings.Contains(descs[field], part) {
			t.Errorf("description of %q = %q, want it to mention %q", field, descs[field], part)
		}
	}
}

// items returns n valid items of quantity 1 and unit price 1000.
func items(n int) []domain.Item {
	out := make([]domain.Item, n)
	for i := range out {
		out[i] = domain.Item{MenuID: "m-1", Name: "Tteokbokki", Quantity: 1, UnitPrice: 1000}
	}
	return out
}

func TestPlaceRequestValidate(t *testing.T) {
	t.Parallel()
	ascii := func(n int) string { return strings.Repeat("x", n) }
	const valid = 2*12000 + 3500
	tests := []struct {
		name       string
		edit       func(*domain.PlaceRequest)
		wantTotal  int64
		wantFields []string
		wantDesc   map[string]string
	}{
		{name: "valid request", edit: func(*domain.PlaceRequest) {}, wantTotal: valid},
		{name: "no items", edit: func(r *domain.PlaceRequest) { r.Items = nil },
			wantFields: []string{"items"}},
		{name: "empty item list", edit: func(r *domain.PlaceRequest) { r.Items = []domain.Item{} },
			wantFields: []string{"items"}},
		{name: "101 items", edit: func(r *domain.PlaceRequest) { r.Items = items(101) },
			wantFields: []string{"items"}, wantDesc: map[string]string{"items": "100"}},
		{name: "exactly 100 items", edit: func(r *domain.PlaceRequest) { r.Items = items(100) },
			wantTotal: 100 * 1000},

		// Quantities.
		{name: "quantity 0", edit: func(r *domain.PlaceRequest) { r.Items[0].Quantity = 0 },
			wantFields: []string{"items[0].quantity"}, wantDesc: map[string]string{"items[0].quantity": "between 1 and 999"}},
		{name: "quantity -1", edit: func(r *domain.PlaceRequest) { r.Items[0].Quantity = -1 },
			wantFields: []string{"items[0].quantity"}},
		{name: "quantity 1000", edit: func(r *domain.PlaceRequest) { r.Items[0].Quantity = 1000 },
			wantFields: []string{"items[0].quantity"}},
		{name: "quantity 1", edit: func(r *domain.PlaceRequest) { r.Items[0].Quantity = 1 },
			wantTotal: 12000 + 3500},
		{name: "quantity 999", edit: func(r *domain.PlaceRequest) { r.Items[0].Quantity = 999; r.Items[0].UnitPrice = 10000 },
			wantTotal: 999*10000 + 3500},

		// Money.
		{name: "unitPrice -1 on the second item", edit: func(r *domain.PlaceRequest) { r.Items[1].UnitPrice = -1 },
			wantFields: []string{"items[1].unitPrice"}, wantDesc: map[string]string{"items[1].unitPrice": "between 1 and 1000000"}},
		{name: "unitPrice 0", edit: func(r *domain.PlaceRequest) { r.Items[1].UnitPrice = 0 },
			wantFields: []string{"items[1].unitPrice"}},
		{name: "unitPrice 1", edit: func(r *domain.PlaceRequest) { r.Items[1].UnitPrice = 1 },
			wantTotal: 2*12000 + 1},
		{name: "unitPrice 1,000,000", edit: func(r *domain.PlaceRequest) { r.Items[1].UnitPrice = 1_000_000 },
			wantTotal: 2*12000 + 1_000_000},
		{name: "unitPrice 1,000,001", edit: func(r *domain.PlaceRequest) { r.Items[1].UnitPrice = 1_000_001 },
			wantFields: []string{"items[1].unitPrice"}, wantDesc: map[string]string{"items[1].unitPrice": "got 1000001"}},
		{name: "unitPrice MaxInt64", edit: func(r *domain.PlaceRequest) { r.Items[0].UnitPrice = math.MaxInt64 },
			wantFields: []string{"items[0].unitPrice"}},
		{name: "unitPrice MinInt64", edit: func(r *domain.PlaceRequest) { r.Items[0].UnitPrice = math.MinInt64 },
			wantFields: []string{"items[0].unitPrice"}},
		{name: "total of exactly 10,000,000", edit: func(r *domain.PlaceRequest) {
			r.Items[0].Quantity, r.Items[0].UnitPrice = 9, 1_000_000
			r.Items[1].Quantity, r.Items[1].UnitPrice = 2, 500_000
		}, wantTotal: 10_000_000},
		{name: "total of 10,000,001", edit: func(r *domain.PlaceRequest) {
			r.Items[0].Quantity, r.Items[0].UnitPrice = 10, 1_000_000
			r.Items[1].Quantity, r.Items[1].UnitPrice = 1, 1
		}, wantFields: []string{"items"}, wantDesc: map[string]string{"items": "at most 10000000 won, got 10000001"}},
		{name: "largest order: 100 lines of 999 at 1,000,000", edit: func(r *domain.PlaceRequest) {
			r.Items = items(100)
			for i := range r.Items {
				r.Items[i].Quantity, r.Items[i].UnitPrice = 999, 1_000_000
			}
		}, wantFields: []string{"items"}, wantDesc: map[string]string{"items": "got 99900000000"}},
		{name: "total is reported after the item violations", edit: func(r *domain.PlaceRequest) {
			r.Items = items(4)
			r.Items[0].Quantity, r.Items[0].UnitPrice = 999, 1_000_000
			r.Items[1].UnitPrice = math.MaxInt64
			r.Items[2].Quantity = 0
		}, wantFields: []string{"items[1].unitPrice", "items[2].quantity", "items"}},

		// Identifiers.
		{name: "empty requestId", edit: func(r *domain.PlaceRequest) { r.RequestID = "" },
			wantFields: []string{"requestId"}, wantDesc: map[string]string{"requestId": "must not be empty"}},
		{name: "empty userId", edit: func(r *domain.PlaceRequest) { r.UserID = "" },
			wantFields: []string{"userId"}},
		{name: "empty shopId", edit: func(r *domain.PlaceRequest) { r.ShopID = "" },
			wantFields: []string{"shopId"}},
		{name: "65-character requestId", edit: func(r *domain.PlaceRequest) { r.RequestID = ascii(65) },
			wantFields: []string{"requestId"}, wantDesc: map[string]string{"requestId": "at most 64 characters, got 65"}},
		{name: "65-character userId", edit: func(r *domain.PlaceRequest) { r.UserID = ascii(65) },
			wantFields: []string{"userId"}},
		{name: "65-character shopId", edit: func(r *domain.PlaceRequest) { r.ShopID = ascii(65) },
			wantFields: []string{"shopId"}},
		{name: "64-character ids", edit: func(r *domain.PlaceRequest) {
			r.RequestID, r.UserID, r.ShopID, r.Items[0].MenuID = ascii(64), ascii(64), ascii(64), ascii(64)
		}, wantTotal: valid},
		{name: "ids of every allowed character", edit: func(r *domain.PlaceRequest) {
			r.RequestID = "AZaz09._@-"
			r.UserID = "kim.minji@example.com"
			r.ShopID = "-_."
			r.Items[0].MenuID = ".hidden"
			r.Items[1].MenuID = "..x"
		}, wantTotal: valid},
		{name: "one-character ids", edit: func(r *domain.PlaceRequest) {
			r.RequestID, r.UserID, r.ShopID, r.Items[0].MenuID = "r", "0", "@", "-"
		}, wantTotal: valid},
		{name: "Korean userId", edit: func(r *domain.PlaceRequest) { r.UserID = "사용자" },
			wantFields: []string{"userId"}, wantDesc: map[string]string{"userId": "A-Z a-z 0-9 . _ @ -"}},
		{name: "userId only spaces", edit: func(r *domain.PlaceRequest) { r.UserID = "   " },
			wantFields: []string{"userId"}, wantDesc: map[string]string{"userId": "' '"}},
		{name: "userId with a slash", edit: func(r *domain.PlaceRequest) { r.UserID = "a/b" },
			wantFields: []string{"userId"}, wantDesc: map[string]string{"userId": "'/' (at byte 1)"}},
		{name: "shopId with NUL", edit: func(r *domain.PlaceRequest) { r.ShopID = "shop\x00" },
			wantFields: []string{"shopId"}, wantDesc: map[string]string{"shopId": `'\x00'`}},
		{name: "requestId with a newline", edit: func(r *domain.PlaceRequest) { r.RequestID = "r-1\n" },
			wantFields: []string{"requestId"}, wantDesc: map[string]string{"requestId": `'\n'`}},
		{name: "requestId with a percent sign", edit: func(r *domain.PlaceRequest) { r.RequestID = "r%2F1" },
			wantFields: []string{"requestId"}},
		{name: "requestId with a colon", edit: func(r *domain.PlaceRequest) { r.RequestID = "r:1" },
			wantFields: []string{"requestId"}},
		{name: "requestId that is not UTF-8", edit: func(r *domain.PlaceRequest) { r.RequestID = "req-\xff" },
			wantFields: []string{"requestId"}, wantDesc: map[string]string{"requestId": "byte 0xFF"}},
		{name: "userId a single dot", edit: func(r *domain.PlaceRequest) { r.UserID = "." },
			wantFields: []string{"userId"}, wantDesc: map[string]string{"userId": `must not be "."`}},
		{name: "shopId two dots", edit: func(r *domain.PlaceRequest) { r.ShopID = ".." },
			wantFields: []string{"shopId"}},
		{name: "empty item menuId", edit: func(r *domain.PlaceRequest) { r.Items[1].MenuID = "" },
			wantFields: []string{"items[1].menuId"}},
		{name: "65-character item menuId", edit: func(r *domain.PlaceRequest) { r.Items[0].MenuID = ascii(65) },
			wantFields: []string{"items[0].menuId"}},
		{name: "item menuId with a space", edit: func(r *domain.PlaceRequest) { r.Items[0].MenuID = "m 1" },
			wantFields: []string{"items[0].menuId"}},

		// Free text.
		{name: "empty deliveryAddress", edit: func(r *domain.PlaceRequest) { r.DeliveryAddress = "" },
			wantFields: []string{"deliveryAddress"}},
		{name: "deliveryAddress only white space", edit: func(r *domain.PlaceRequest) { r.DeliveryAddress = " \n\t " },
			wantFields: []string{"deliveryAddress"}, wantDesc: map[string]string{"deliveryAddress": "white space"}},
		{name: "deliveryAddress of 512 characters", edit: func(r *domain.PlaceRequest) { r.DeliveryAddress = ascii(512) },
			wantTotal: valid},
		{name: "deliveryAddress of 512 Korean characters", edit: func(r *domain.PlaceRequest) { r.DeliveryAddress = strings.Repeat("서", 512) },
			wantTotal: valid},
		{name: "deliveryAddress of 513 characters", edit: func(r *domain.PlaceRequest) { r.DeliveryAddress = ascii(513) },
			wantFields: []string{"deliveryAddress"}, wantDesc: map[string]string{"deliveryAddress": "at most 512 characters, got 513"}},
		{name: "deliveryAddress on two lines", edit: func(r *domain.PlaceRequest) { r.DeliveryAddress = "1 Teheran-ro\r\nGangnam-gu, Seoul" },
			wantTotal: valid},
		{name: "deliveryAddress with a tab", edit: func(r *domain.PlaceRequest) { r.DeliveryAddress = "1 Teheran-ro\tSeoul" },
			wantFields: []string{"deliveryAddress"}, wantDesc: map[string]string{"deliveryAddress": "U+0009"}},
		{name: "deliveryAddress with NUL", edit: func(r *domain.PlaceRequest) { r.DeliveryAddress = "1 Teheran-ro\x00" },
			wantFields: []string{"deliveryAddress"}, wantDesc: map[string]string{"deliveryAddress": "control characters other than line breaks"}},
		{name: "deliveryAddress with a C1 control", edit: func(r *domain.PlaceRequest) { r.DeliveryAddress = "Seoul\u0085" },
			wantFields: []string{"deliveryAddress"}},
		{name: "deliveryAddress that is not UTF-8", edit: func(r *domain.PlaceRequest) { r.DeliveryAddress = "addr\xfe" },
			wantFields: []string{"deliveryAddress"}, wantDesc: map[string]string{"deliveryAddress": "UTF-8"}},
		{name: "empty item name", edit: func(r *domain.PlaceRequest) { r.Items[0].Name = "" },
			wantFields: []string{"items[0].name"}},
		{name: "item name of 200 characters", edit: func(r *domain.PlaceRequest) { r.Items[0].Name = ascii(200) },
			wantTotal: valid},
		{name: "item name of 201 characters", edit: func(r *domain.PlaceRequest) { r.Items[0].Name = ascii(201) },
			wantFields: []string{"items[0].name"}},
		{name: "item name in Korean with an emoji", edit: func(r *domain.PlaceRequest) { r.Items[0].Name = "김치찌개 🌶️" },
			wantTotal: valid},
		{name: "item name with a newline", edit: func(r *domain.PlaceRequest) { r.Items[1].Name = "Kimchi\nstew" },
			wantFields: []string{"items[1].name"}, wantDesc: map[string]string{"items[1].name": "U+000A"}},
		{name: "item name only spaces", edit: func(r *domain.PlaceRequest) { r.Items[1].Name = "   " },
			wantFields: []string{"items[1].name"}},

		{name: "several bad fields are all reported", edit: func(r *domain.PlaceRequest) {
			r.RequestID = ""
			r.UserID = ascii(65)
			r.ShopID = "a/b"
			r.DeliveryAddress = "   "
			r.Items[0].Name = ""
			r.Items[0].Quantity = 1000
			r.Items[1].MenuID = ""
			r.Items[1].Quantity = 0
			r.Items[1].UnitPrice = -5
		}, wantFields: []string{
			"requestId", "userId", "shopId", "deliveryAddress",
			"items[0].name", "items[0].quantity",
			"items[1].menuId", "items[1].quantity", "items[1].unitPrice",
		}},
		{name: "bad ids together with no items", edit: func(r *domain.PlaceRequest) {
			r.UserID, r.Items = "", nil
		}, wantFields: []string{"userId", "items"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := validRequest()
			tc.edit(&r)

			total, err := r.Validate()

			checkValidation(t, err, tc.wantFields, tc.wantDesc)
			if len(tc.wantFields) > 0 && total != 0 {
				t.Errorf("total = %d alongside an error, want 0", total)
			}
			if len(tc.wantFields) == 0 && total != tc.wantTotal {
				t.Errorf("total = %d, want %d", total, tc.wantTotal)
			}
		})
	}
}

func TestValidateReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		reason     string
		wantFields []string
	}{
		{name: "empty", reason: "", wantFields: []string{"reason"}},
		{name: "three spaces", reason: "   ", wantFields: []string{"reason"}},
		{name: "one character", reason: "x"},
		{name: "ordinary", reason: "ordered the wrong shop"},
		{name: "two lines", reason: "wrong shop\nplease refund"},
		{name: "with NUL", reason: "wrong\x00shop", wantFields: []string{"reason"}},
		{name: "with an escape sequence", reason: "\x1b[31mred", wantFields: []string{"reason"}},
		{name: "not UTF-8", reason: "\xc3", wantFields: []string{"reason"}},
		{name: "512 characters", reason: strings.Repeat("x", 512)},
		{name: "512 Korean characters", reason: strings.Repeat("취", 512)},
		{name: "513 characters", reason: strings.Repeat("x", 513), wantFields: []string{"reason"}},
		{name: "513 Korean characters", reason: strings.Repeat("취", 513), wantFields: []string{"reason"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkValidation(t, domain.ValidateReason(tc.reason), tc.wantFields, nil)
		})
	}
}

func TestValidateOrderNo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		no         int64
		wantFields []string
	}{
		{name: "zero", no: 0, wantFields: []string{"orderNo"}},
		{name: "minus one", no: -1, wantFields: []string{"orderNo"}},
		{name: "most negative", no: math.MinInt64, wantFields: []string{"orderNo"}},
		{name: "one", no: 1},
		{name: "largest", no: math.MaxInt64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkValidation(t, domain.ValidateOrderNo(tc.no), tc.wantFields, nil)
		})
	}
}

func TestValidateTargetStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     domain.Status
		wantFields []string
	}{
		{name: "unspecified", status: 0, wantFields: []string{"status"}},
		{name: "negative", status: -1, wantFields: []string{"status"}},
		{name: "unknown number", status: 99, wantFields: []string{"status"}},
		// Every known status passes; whether the move is allowed is for
		// Advance to say, with a rule error.
		{name: "PLACED", status: domain.StatusPlaced},
		{name: "ACCEPTED", status: domain.StatusAccepted},
		{name: "DELIVERING", status: domain.StatusDelivering},
		{name: "DELIVERED", status: domain.StatusDelivered},
		{name: "CANCELLED", status: domain.StatusCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkValidation(t, domain.ValidateTargetStatus(tc.status), tc.wantFields, nil)
		})
	}
}
