package dlq

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/orderflow/orderflow/shared/deadletter"
	"github.com/orderflow/orderflow/shared/kafkax"
)

// Filter selects dead letters.
type Filter struct {
	// Reasons keeps entries with one of these reasons (empty: any).
	Reasons []string
	// Since and Until bound the dead-lettered time: Since <= At < Until;
	// zero values leave that side open.
	Since, Until time.Time
	// Orders keeps entries of these orders (empty: any).
	Orders []int64
	// All includes entries already worked off.
	All bool
}

// Validate rejects unknown reasons.
func (f Filter) Validate() error {
	for _, r := range f.Reasons {
		if !slices.Contains(kafkax.DLQReasons(), r) {
			return fmt.Errorf("unknown reason %q (one of %v)", r, kafkax.DLQReasons())
		}
	}
	return nil
}

// Match reports whether e is selected.
func (f Filter) Match(e Entry) bool {
	switch {
	case len(f.Reasons) > 0 && !slices.Contains(f.Reasons, e.Reason),
		!f.Since.IsZero() && e.At.Before(f.Since),
		!f.Until.IsZero() && !e.At.Before(f.Until),
		len(f.Orders) > 0 && !slices.Contains(f.Orders, e.OrderNo),
		!f.All && e.Resolution != nil:
		return false
	}
	return true
}

// Service reads dead letters together with their worked-off marks.
type Service struct {
	reader *Reader
	store  *Store
}

// NewService returns the service over reader and store.
func NewService(reader *Reader, store *Store) *Service {
	return &Service{reader: reader, store: store}
}

// Unfiltered reports whether f selects by nothing but All, so the counts
// need no message read (Count).
func (f Filter) Unfiltered() bool {
	return len(f.Reasons) == 0 && f.Since.IsZero() && f.Until.IsZero() && len(f.Orders) == 0
}

// Count counts the topic's entries and those not worked off without
// reading them, by the definition the projector's
// orderflow_dlq_unresolved_messages gauge uses (shared/deadletter).
func (s *Service) Count(ctx context.Context) (deadletter.Counts, error) {
	return deadletter.Count(ctx, s.reader.client, s.store.resolved, s.reader.topic)
}

// Matching returns every entry the filter selects, in topic order, and how
// many of them are not worked off.
func (s *Service) Matching(ctx context.Context, f Filter) ([]Entry, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	resolved, err := s.store.Resolved(ctx, s.reader.Topic())
	if err != nil {
		return nil, err
	}
	var out []Entry
	err = s.reader.Scan(ctx, func(e Entry) error {
		if r, ok := resolved[e.ID()]; ok {
			e.Resolution = &r
		}
		if f.Match(e) {
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// Page is one page of a listing.
type Page struct {
	Entries []Entry
	// NextToken continues the listing ("" on the last page).
	NextToken string
	// Matched is how many entries the filter selects in all; Unresolved
	// how many of those are not worked off.
	Matched, Unresolved int
}

// List returns a page of the selected entries after the token.
func (s *Service) List(ctx context.Context, f Filter, pageSize int, token string) (Page, error) {
	if pageSize < 1 {
		return Page{}, errors.New("the page size must be at least 1")
	}
	after, err := decodeToken(token)
	if err != nil {
		return Page{}, err
	}
	all, err := s.Matching(ctx, f)
	if err != nil {
		return Page{}, err
	}
	p := Page{Matched: len(all)}
	for _, e := range all {
		if e.Resolution == nil {
			p.Unresolved++
		}
		if after != nil && !refAfter(e.Ref, *after) {
			continue
		}
		if len(p.Entries) == pageSize {
			p.NextToken = encodeToken(p.Entries[len(p.Entries)-1].Ref)
			continue
		}
		p.Entries = append(p.Entries, e)
	}
	return p, nil
}

// Get returns one entry with its mark.
func (s *Service) Get(ctx context.Context, ref Ref) (Entry, error) {
	e, err := s.reader.Get(ctx, ref)
	if err != nil {
		return e, err
	}
	resolved, err := s.store.Resolved(ctx, s.reader.Topic())
	if err != nil {
		return e, err
	}
	if r, ok := resolved[e.ID()]; ok {
		e.Resolution = &r
	}
	return e, nil
}

func refAfter(a, b Ref) bool {
	return a.Partition > b.Partition || (a.Partition == b.Partition && a.Offset > b.Offset)
}

// Page tokens are opaque to callers: the last entry's place, encoded.
func encodeToken(r Ref) string {
	return base64.RawURLEncoding.EncodeToString([]byte("dlq1:" + r.String()))
}

func decodeToken(tok string) (*Ref, error) {
	if tok == "" {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) < 5 || string(raw[:5]) != "dlq1:" {
		return nil, fmt.Errorf("invalid page token %q", tok)
	}
	r, err := ParseRef(string(raw[5:]))
	if err != nil {
		return nil, fmt.Errorf("invalid page token %q", tok)
	}
	return &r, nil
}
