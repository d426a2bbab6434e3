package app

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/shared/auth"
	"github.com/orderflow/orderflow/shared/validation"
)

// fields returns the fields a *validation.Error names, or nil for nil.
func fields(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *validation.Error
	if !errors.As(err, &ve) {
		t.Fatalf("error = %v (%T), want a *validation.Error", err, err)
	}
	out := make([]string, len(ve.Violations))
	for i, v := range ve.Violations {
		if v.Description == "" {
			t.Errorf("violation of %q has no description", v.Field)
		}
		out[i] = v.Field
	}
	return out
}

func TestValidateGet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		orderNo    int64
		minVersion int32
		want       []string
	}{
		{"valid", 1, 0, nil},
		{"valid with min version", 1 << 40, 3, nil},
		{"order number 0", 0, 0, []string{"orderNo"}},
		{"negative order number", -5, 0, []string{"orderNo"}},
		{"negative min version", 10, -1, []string{"minVersion"}},
		{"both", 0, -1, []string{"orderNo", "minVersion"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := fields(t, ValidateGet(tc.orderNo, tc.minVersion)); !slices.Equal(got, tc.want) {
				t.Errorf("violations %q, want %q", got, tc.want)
			}
		})
	}
}

func TestListValidation(t *testing.T) {
	t.Parallel()
	userToken := EncodePageToken(Position{PlacedAt: time.Unix(1_700_000_000, 0), OrderNo: 9}, fingerprint("user", "user-1"))
	shopToken := EncodePageToken(Position{PlacedAt: time.Unix(1_700_000_000, 0), OrderNo: 9}, fingerprint("shop", "shop-1", "PLACED"))
	tests := []struct {
		name      string
		user      bool
		id        string
		status    string
		pageSize  int32
		pageToken string
		want      []string
		wantLimit int
		wantAfter bool
	}{
		{name: "user, defaults", user: true, id: "user-1", wantLimit: DefaultPageSize + 1},
		{name: "user, page size 1", user: true, id: "user-1", pageSize: 1, wantLimit: 2},
		{name: "user, page size 100", user: true, id: "user-1", pageSize: 100, wantLimit: 101},
		{name: "user, with token", user: true, id: "user-1", pageToken: userToken, wantLimit: DefaultPageSize + 1, wantAfter: true},
		{name: "user, 64-character id", user: true, id: strings.Repeat("u", 64), wantLimit: DefaultPageSize + 1},
		{name: "user, every allowed character", user: true, id: "AZaz09._@-", wantLimit: DefaultPageSize + 1},
		{name: "user, an e-mail address", user: true, id: "kim.minji@example.com", wantLimit: DefaultPageSize + 1},
		{name: "user, multi-byte characters", user: true, id: strings.Repeat("주", 5), want: []string{"userId"}},
		{name: "user, a slash", user: true, id: "a/b", want: []string{"userId"}},
		{name: "user, only spaces", user: true, id: "   ", want: []string{"userId"}},
		{name: "user, NUL", user: true, id: "u\x00", want: []string{"userId"}},
		{name: "user, a single dot", user: true, id: ".", want: []string{"userId"}},
		{name: "user, two dots", user: true, id: "..", want: []string{"userId"}},
		{name: "user, empty id", user: true, id: "", want: []string{"userId"}},
		{name: "user, 65-character id", user: true, id: strings.Repeat("u", 65), want: []string{"userId"}},
		{name: "user, invalid UTF-8", user: true, id: "u\xff", want: []string{"userId"}},
		{name: "user, page size 101", user: true, id: "user-1", pageSize: 101, want: []string{"pageSize"}},
		{name: "user, negative page size", user: true, id: "user-1", pageSize: -1, want: []string{"pageSize"}},
		{name: "user, corrupt token", user: true, id: "user-1", pageToken: "garbage!", want: []string{"pageToken"}},
		{name: "user, another user's token", user: true, id: "user-2", pageToken: userToken, want: []string{"pageToken"}},
		{name: "user, a shop's token", user: true, id: "user-1", pageToken: shopToken, want: []string{"pageToken"}},
		{name: "user, everything wrong", user: true, id: "", pageSize: 500, pageToken: "x", want: []string{"userId", "pageSize", "pageToken"}},
		{name: "shop, defaults", id: "shop-1", wantLimit: DefaultPageSize + 1},
		{name: "shop, every status", id: "shop-1", status: "CANCELLED", wantLimit: DefaultPageSize + 1},
		{name: "shop, with token", id: "shop-1", status: "PLACED", pageToken: shopToken, pageSize: 5, wantLimit: 6, wantAfter: true},
		{name: "shop, token of another status", id: "shop-1", status: "ACCEPTED", pageToken: shopToken, want: []string{"pageToken"}},
		{name: "shop, token without the status", id: "shop-1", pageToken: shopToken, want: []string{"pageToken"}},
		{name: "shop, a user's token", id: "shop-1", status: "PLACED", pageToken: userToken, want: []string{"pageToken"}},
		{name: "shop, unknown status", id: "shop-1", status: "FLYING", want: []string{"status"}},
		{name: "shop, lower-case status", id: "shop-1", status: "placed", want: []string{"status"}},
		{name: "shop, empty id", id: "", want: []string{"shopId"}},
		{name: "shop, 65-character id", id: strings.Repeat("s", 65), want: []string{"shopId"}},
		{name: "shop, a newline", id: "shop-1\n", want: []string{"shopId"}},
		{name: "shop, a percent sign", id: "shop%2F1", want: []string{"shopId"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := &fakeStore{}
			svc, err := New(store, nil, auth.Unprotected{}, Config{})
			if err != nil {
				t.Fatal(err)
			}
			if tc.user {
				_, err = svc.ListUserOrders(t.Context(), tc.id, tc.pageSize, tc.pageToken)
			} else {
				_, err = svc.ListShopOrders(t.Context(), tc.id, tc.status, tc.pageSize, tc.pageToken)
			}
			if got := fields(t, err); !slices.Equal(got, tc.want) {
				t.Fatalf("violations %q, want %q (%v)", got, tc.want, err)
			}
			if tc.want != nil {
				if len(store.lists) != 0 {
					t.Errorf("an invalid request reached the store: %+v", store.lists)
				}
				return
			}
			if len(store.lists) != 1 {
				t.Fatalf("store was asked %d times, want once", len(store.lists))
			}
			q := store.lists[0]
			if q.Limit != tc.wantLimit || (q.After != nil) != tc.wantAfter {
				t.Errorf("store query %+v, want limit %d, after set %v", q, tc.wantLimit, tc.wantAfter)
			}
			if tc.user && (q.UserID != tc.id || q.ShopID != "") || !tc.user && (q.ShopID != tc.id || q.UserID != "" || q.Status != tc.status) {
				t.Errorf("store query %+v does not select the request's orders", q)
			}
		})
	}
}
