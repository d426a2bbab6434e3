package app

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPageTokenRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		pos   Position
		query string
	}{
		{"user list", Position{PlacedAt: time.Date(2026, 11, 1, 12, 0, 0, 123_000_000, time.UTC), OrderNo: 42}, fingerprint("user", "user-1")},
		{"shop list with status", Position{PlacedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), OrderNo: 9_000_000_000_000}, fingerprint("shop", "shop-1", "ACCEPTED")},
		{"before 1970", Position{PlacedAt: time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC), OrderNo: 1}, fingerprint("user", "u")},
		{"non-UTC zone", Position{PlacedAt: time.Date(2026, 5, 5, 9, 0, 0, 0, time.FixedZone("KST", 9*3600)), OrderNo: 7}, fingerprint("user", "u")},
		{"with microseconds", Position{PlacedAt: time.Date(2026, 11, 1, 12, 0, 0, 123_000_000, time.UTC),
			PlacedAtMicros: time.Date(2026, 11, 1, 12, 0, 0, 123_456_000, time.UTC).UnixMicro(), OrderNo: 42}, fingerprint("user", "u")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			token := EncodePageToken(tc.pos, tc.query)
			if strings.ContainsAny(token, "+/=") {
				t.Errorf("token %q is not URL-safe", token)
			}
			got, err := DecodePageToken(token, tc.query)
			if err != nil {
				t.Fatalf("DecodePageToken: %v", err)
			}
			if !got.PlacedAt.Equal(tc.pos.PlacedAt) || got.PlacedAtMicros != tc.pos.PlacedAtMicros || got.OrderNo != tc.pos.OrderNo {
				t.Errorf("decoded %+v, want %+v", got, tc.pos)
			}
		})
	}
}

// A token issued before placedAtMicros existed still continues its list, as
// the position of a document without it.
func TestPageTokenWithoutMicroseconds(t *testing.T) {
	t.Parallel()
	query := fingerprint("user", "u")
	token := base64.RawURLEncoding.EncodeToString([]byte(`{"t":1793534400123,"n":42,"q":"` + query + `"}`))
	got, err := DecodePageToken(token, query)
	if err != nil {
		t.Fatal(err)
	}
	if got.PlacedAtMicros != 0 || got.OrderNo != 42 || got.PlacedAt.UnixMilli() != 1793534400123 {
		t.Errorf("decoded %+v, want the position of order 42 without microseconds", got)
	}
}

func TestPageTokenTruncatesToMilliseconds(t *testing.T) {
	t.Parallel()
	// The store keeps whole milliseconds; a token must not carry more.
	at := time.Date(2026, 11, 1, 12, 0, 0, 123_456_789, time.UTC)
	got, err := DecodePageToken(EncodePageToken(Position{PlacedAt: at, OrderNo: 1}, "q"), "q")
	if err != nil {
		t.Fatal(err)
	}
	if want := at.Truncate(time.Millisecond); !got.PlacedAt.Equal(want) {
		t.Errorf("placedAt %s, want %s", got.PlacedAt, want)
	}
}

func TestPageTokenRejected(t *testing.T) {
	t.Parallel()
	query := fingerprint("user", "user-1")
	b64 := base64.RawURLEncoding.EncodeToString
	valid := EncodePageToken(Position{PlacedAt: time.Unix(1_700_000_000, 0), OrderNo: 5}, query)
	tests := []struct {
		name  string
		token string
		query string
		want  error
	}{
		{"not base64", "***", query, errMalformedToken},
		{"standard base64 padding", valid + "==", query, errMalformedToken},
		{"not JSON", b64([]byte("hello")), query, errMalformedToken},
		{"JSON array", b64([]byte(`[1,2]`)), query, errMalformedToken},
		{"unknown field", b64([]byte(`{"t":1,"n":5,"q":"` + query + `","x":1}`)), query, errMalformedToken},
		{"trailing data", b64([]byte(`{"t":1,"n":5,"q":"` + query + `"}{}`)), query, errMalformedToken},
		{"order number 0", b64([]byte(`{"t":1,"n":0,"q":"` + query + `"}`)), query, errMalformedToken},
		{"no fingerprint", b64([]byte(`{"t":1,"n":5}`)), query, errMalformedToken},
		{"number as string", b64([]byte(`{"t":"1","n":5,"q":"` + query + `"}`)), query, errMalformedToken},
		{"truncated", valid[:len(valid)-3], query, errMalformedToken},
		{"another user", valid, fingerprint("user", "user-2"), errForeignToken},
		{"a shop's list", valid, fingerprint("shop", "user-1", ""), errForeignToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := DecodePageToken(tc.token, tc.query); !errors.Is(err, tc.want) {
				t.Errorf("DecodePageToken(%q) error = %v, want %v", tc.token, err, tc.want)
			}
		})
	}
}

func TestFingerprintSeparatesQueries(t *testing.T) {
	t.Parallel()
	queries := [][]string{
		{"user", "a"},
		{"user", "b"},
		{"shop", "a", ""},
		{"shop", "a", "PLACED"},
		{"shop", "aP", "LACED"},
		{"shop", "a", "ACCEPTED"},
		{"user", "shop"},
	}
	seen := map[string][]string{}
	for _, q := range queries {
		f := fingerprint(q...)
		if prev, ok := seen[f]; ok {
			t.Errorf("%q and %q share fingerprint %s", prev, q, f)
		}
		seen[f] = q
		if again := fingerprint(q...); again != f {
			t.Errorf("fingerprint of %q is not stable: %s, %s", q, f, again)
		}
	}
}
