package app

import (
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/orderflow/orderflow/shared/auth"
	"github.com/orderflow/orderflow/shared/orderenum"
	"github.com/orderflow/orderflow/shared/validation"
)

// FuzzListValidation checks the list queries' validation for any
// arguments: it never panics; a refused request names fields and never
// reaches the store; an accepted one reaches it once, with an id that
// follows validation.IDPattern, a known status or none, a limit of 2 to
// MaxPageSize+1 and, with a page token, the position the token holds.
func FuzzListValidation(f *testing.F) {
	pos := Position{PlacedAt: time.Unix(1_700_000_000, 0), OrderNo: 9}
	f.Add(true, "user-1", "", int32(0), "")
	f.Add(true, "user-1", "", int32(100), EncodePageToken(pos, fingerprint("user", "user-1")))
	f.Add(false, "shop-1", "PLACED", int32(5), EncodePageToken(pos, fingerprint("shop", "shop-1", "PLACED")))
	f.Add(false, "shop-1", "ACCEPTED", int32(5), EncodePageToken(pos, fingerprint("shop", "shop-1", "PLACED")))
	f.Add(false, "shop-1", "placed", int32(-1), "garbage!")
	f.Add(true, "a/b", "", int32(101), "eyJ9")
	f.Add(true, "..", "", int32(1), "")
	f.Add(false, "주문", "FLYING", int32(1<<30), "eyJvIjowfQ")
	f.Add(true, "u\x00", "", int32(-1<<31), "\xff")
	idRE := regexp.MustCompile(validation.IDPattern)

	f.Fuzz(func(t *testing.T, user bool, id, status string, pageSize int32, pageToken string) {
		store := &fakeStore{}
		svc, err := New(store, nil, auth.Unprotected{}, Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer svc.Close()
		if user {
			_, err = svc.ListUserOrders(t.Context(), id, pageSize, pageToken)
		} else {
			_, err = svc.ListShopOrders(t.Context(), id, status, pageSize, pageToken)
		}
		if err != nil {
			var ve *validation.Error
			if !errors.As(err, &ve) || len(ve.Violations) == 0 {
				t.Fatalf("error = %v (%T), want a *validation.Error with violations", err, err)
			}
			if len(store.lists) != 0 {
				t.Fatalf("a refused request reached the store: %+v", store.lists)
			}
			return
		}
		if len(store.lists) != 1 {
			t.Fatalf("store asked %d times, want once", len(store.lists))
		}
		q := store.lists[0]
		got := q.ShopID
		if user {
			got = q.UserID
		}
		if got != id || !idRE.MatchString(id) {
			t.Errorf("accepted id %q (store asked for %q), want one matching %s", id, got, validation.IDPattern)
		}
		if !user && status != "" {
			if _, ok := orderenum.ParseStatus(status); !ok || q.Status != status {
				t.Errorf("accepted status %q (store asked for %q)", status, q.Status)
			}
		}
		if q.Limit < 2 || q.Limit > MaxPageSize+1 {
			t.Errorf("store limit %d, want 2..%d", q.Limit, MaxPageSize+1)
		}
		if (pageToken != "") != (q.After != nil) {
			t.Errorf("page token %q gave the store position %v", pageToken, q.After)
		}
		if q.After != nil && q.After.OrderNo < 1 {
			t.Errorf("accepted a page token at order %d", q.After.OrderNo)
		}
	})
}
