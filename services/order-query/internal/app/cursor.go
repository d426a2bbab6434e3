package app

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"
)

// Position is a place in a list ordered by placedAt descending, then
// placedAtMicros descending, then order number descending: the last order of
// a page. The next page starts strictly after it, so orders placed after the
// first page was read never shift the later pages (keyset pagination, not
// offsets).
type Position struct {
	// PlacedAt has the store's precision: whole milliseconds.
	PlacedAt time.Time
	// PlacedAtMicros is the placement time in Unix microseconds; 0 for a
	// document written before the store kept it (see orderdoc.Document).
	PlacedAtMicros int64
	OrderNo        int64
}

// cursor is the content of a page token. Field names are short because the
// token travels in URLs.
type cursor struct {
	// PlacedAt is the position's placedAt in Unix milliseconds.
	PlacedAt int64 `json:"t"`
	// PlacedAtMicros is the position's placedAtMicros; absent for a document
	// without it and in tokens issued before it existed, which continue as
	// the position of such a document.
	PlacedAtMicros int64 `json:"u,omitempty"`
	OrderNo        int64 `json:"n"`
	// Query is the fingerprint of the query the token was issued for.
	Query string `json:"q"`
}

// Errors of DecodePageToken; the description of the pageToken violation.
var (
	errMalformedToken = errors.New("is not a page token issued by this service")
	errForeignToken   = errors.New("was issued for a different query; start again without a page token")
)

// fingerprint identifies a list query (whose orders, which filter) without
// revealing it: a token taken from one list cannot continue another.
func fingerprint(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		// Length-prefixing keeps ("ab","c") and ("a","bc") apart.
		_, _ = h.Write([]byte{byte(len(p) >> 8), byte(len(p))})
		_, _ = h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// EncodePageToken returns the opaque token for the page after pos in the
// list with the given fingerprint.
func EncodePageToken(pos Position, query string) string {
	raw, _ := json.Marshal(cursor{PlacedAt: pos.PlacedAt.UnixMilli(), PlacedAtMicros: pos.PlacedAtMicros, OrderNo: pos.OrderNo, Query: query})
	return base64.RawURLEncoding.EncodeToString(raw)
}

// DecodePageToken reads a token made by EncodePageToken and checks that it
// belongs to the list with the given fingerprint.
func DecodePageToken(token, query string) (Position, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return Position{}, errMalformedToken
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var c cursor
	if err := dec.Decode(&c); err != nil || dec.More() || c.OrderNo < 1 || c.Query == "" || c.PlacedAtMicros < 0 {
		return Position{}, errMalformedToken
	}
	if c.Query != query {
		return Position{}, errForeignToken
	}
	return Position{PlacedAt: time.UnixMilli(c.PlacedAt).UTC(), PlacedAtMicros: c.PlacedAtMicros, OrderNo: c.OrderNo}, nil
}
