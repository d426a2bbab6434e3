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
	// 64 runes of three bytes each: 192 bytes, still a valid id.
	hangul64 := strings.Repeat("주문", 32)
	ascii := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name       string
		edit       func(*domain.PlaceRequest)
		wantTotal  int64
		wantFields []string
		wantDesc   map[string]string
	}{
		{name: "valid request", edit: func(*domain.PlaceRequest) {}, wantTotal: 2*12000 + 3500},
		{name: "no items", edit: func(r *domain.PlaceRequest) { r.Items = nil },
			wantFields: []string{"items"}},
		{name: "empty item list", edit: func(r *domain.PlaceRequest) { r.Items = []domain.Item{} },
			wantFields: []string{"items"}},
		{name: "101 items", edit: func(r *domain.PlaceRequest) { r.Items = items(101) },
			wantFields: []string{"items"}, wantDesc: map[string]string{"items": "100"}},
		{name: "exactly 100 items", edit: func(r *domain.PlaceRequest) { r.Items = items(100) },
			wantTotal: 100 * 1000},
		{name: "quantity 0", edit: func(r *domain.PlaceRequest) { r.Items[0].Quantity = 0 },
			wantFields: []string{"items[0].quantity"}},
		{name: "quantity -1", edit: func(r *domain.PlaceRequest) { r.Items[0].Quantity = -1 },
			wantFields: []string{"items[0].quantity"}},
		{name: "quantity 1000", edit: func(r *domain.PlaceRequest) { r.Items[0].Quantity = 1000 },
			wantFields: []string{"items[0].quantity"}},
		{name: "quantity 1", edit: func(r *domain.PlaceRequest) { r.Items[0].Quantity = 1 },
			wantTotal: 12000 + 3500},
		{name: "quantity 999", edit: func(r *domain.PlaceRequest) { r.Items[0].Quantity = 999 },
			wantTotal: 999*12000 + 3500},
		{name: "unitPrice -1 on the second item", edit: func(r *domain.PlaceRequest) { r.Items[1].UnitPrice = -1 },
			wantFields: []string{"items[1].unitPrice"}},
		{name: "unitPrice 0", edit: func(r *domain.PlaceRequest) { r.Items[1].UnitPrice = 0 },
			wantTotal: 2 * 12000},
		{name: "total overflows across two lines", edit: func(r *domain.PlaceRequest) {
			r.Items[0].Quantity, r.Items[0].UnitPrice = 999, math.MaxInt64/999
			r.Items[1].Quantity, r.Items[1].UnitPrice = 999, math.MaxInt64/999
		}, wantFields: []string{"items"}, wantDesc: map[string]string{"items": "exceeds"}},
		{name: "one line overflows", edit: func(r *domain.PlaceRequest) {
			r.Items[0].Quantity, r.Items[0].UnitPrice = 2, math.MaxInt64/2+1
		}, wantFields: []string{"items"}, wantDesc: map[string]string{"items": "exceeds"}},
		{name: "total of exactly MaxInt64", edit: func(r *domain.PlaceRequest) {
			r.Items[0].Quantity, r.Items[0].UnitPrice = 1, math.MaxInt64-1
			r.Items[1].Quantity, r.Items[1].UnitPrice = 1, 1
		}, wantTotal: math.MaxInt64},
		{name: "total one above MaxInt64", edit: func(r *domain.PlaceRequest) {
			r.Items[0].Quantity, r.Items[0].UnitPrice = 1, math.MaxInt64-1
			r.Items[1].Quantity, r.Items[1].UnitPrice = 1, 2
		}, wantFields: []string{"items"}, wantDesc: map[string]string{"items": "exceeds"}},
		{name: "overflow is reported once, after the item violations", edit: func(r *domain.PlaceRequest) {
			r.Items = items(4)
			r.Items[0].UnitPrice = math.MaxInt64
			r.Items[1].UnitPrice = math.MaxInt64
			r.Items[2].Quantity = 0
			r.Items[3].UnitPrice = math.MaxInt64
		}, wantFields: []string{"items[2].quantity", "items"}},
		{name: "empty requestId", edit: func(r *domain.PlaceRequest) { r.RequestID = "" },
			wantFields: []string{"requestId"}},
		{name: "empty userId", edit: func(r *domain.PlaceRequest) { r.UserID = "" },
			wantFields: []string{"userId"}},
		{name: "empty shopId", edit: func(r *domain.PlaceRequest) { r.ShopID = "" },
			wantFields: []string{"shopId"}},
		{name: "65-character requestId", edit: func(r *domain.PlaceRequest) { r.RequestID = ascii(65) },
			wantFields: []string{"requestId"}, wantDesc: map[string]string{"requestId": "64"}},
		{name: "65-character userId", edit: func(r *domain.PlaceRequest) { r.UserID = ascii(65) },
			wantFields: []string{"userId"}},
		{name: "65-character shopId", edit: func(r *domain.PlaceRequest) { r.ShopID = ascii(65) },
			wantFields: []string{"shopId"}},
		{name: "64-character ids", edit: func(r *domain.PlaceRequest) {
			r.RequestID, r.UserID, r.ShopID, r.Items[0].MenuID = ascii(64), ascii(64), ascii(64), ascii(64)
		}, wantTotal: 2*12000 + 3500},
		{name: "64 Korean characters are 64, not 192", edit: func(r *domain.PlaceRequest) {
			r.RequestID, r.UserID, r.ShopID, r.Items[0].MenuID = hangul64, hangul64, hangul64, hangul64
		}, wantTotal: 2*12000 + 3500},
		{name: "65 Korean characters", edit: func(r *domain.PlaceRequest) { r.UserID = hangul64 + "가" },
			wantFields: []string{"userId"}},
		{name: "requestId that is not UTF-8", edit: func(r *domain.PlaceRequest) { r.RequestID = "req-\xff" },
			wantFields: []string{"requestId"}, wantDesc: map[string]string{"requestId": "UTF-8"}},
		{name: "empty deliveryAddress", edit: func(r *domain.PlaceRequest) { r.DeliveryAddress = "" },
			wantFields: []string{"deliveryAddress"}},
		{name: "deliveryAddress of 512 characters", edit: func(r *domain.PlaceRequest) { r.DeliveryAddress = ascii(512) },
			wantTotal: 2*12000 + 3500},
		{name: "deliveryAddress of 513 characters", edit: func(r *domain.PlaceRequest) { r.DeliveryAddress = ascii(513) },
			wantFields: []string{"deliveryAddress"}},
		{name: "empty item menuId", edit: func(r *domain.PlaceRequest) { r.Items[1].MenuID = "" },
			wantFields: []string{"items[1].menuId"}},
		{name: "65-character item menuId", edit: func(r *domain.PlaceRequest) { r.Items[0].MenuID = ascii(65) },
			wantFields: []string{"items[0].menuId"}},
		{name: "empty item name", edit: func(r *domain.PlaceRequest) { r.Items[0].Name = "" },
			wantFields: []string{"items[0].name"}},
		{name: "item name of 200 characters", edit: func(r *domain.PlaceRequest) { r.Items[0].Name = ascii(200) },
			wantTotal: 2*12000 + 3500},
		{name: "item name of 201 characters", edit: func(r *domain.PlaceRequest) { r.Items[0].Name = ascii(201) },
			wantFields: []string{"items[0].name"}},
		{name: "several bad fields are all reported", edit: func(r *domain.PlaceRequest) {
			r.RequestID = ""
			r.UserID = ascii(65)
			r.ShopID = ""
			r.DeliveryAddress = ""
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
		{name: "one character", reason: "x"},
		{name: "ordinary", reason: "ordered the wrong shop"},
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
