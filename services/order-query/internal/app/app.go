// Package app holds the query side's use cases: read one order (optionally
// waiting for the projector to catch up with a version the caller has just
// written) and list a user's or a shop's orders, newest first, in pages
// addressed by opaque cursor tokens. It validates input and leaves storage
// to a Store.
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/orderflow/orderflow/shared/auth"
	"github.com/orderflow/orderflow/shared/orderdoc"
	"github.com/orderflow/orderflow/shared/validation"
)

// Store reads the order documents the projector writes.
type Store interface {
	// Get returns the document of one order, or ErrNotFound.
	Get(ctx context.Context, orderNo int64) (*orderdoc.Document, error)
	// List returns at most q.Limit documents matching q, ordered by placedAt
	// descending, then placedAtMicros descending (documents without it last
	// within their millisecond), then order number descending, starting
	// strictly after q.After when it is set.
	List(ctx context.Context, q ListQuery) ([]orderdoc.Document, error)
	// Documents returns the document of each given order that has one, in
	// one query.
	Documents(ctx context.Context, orderNos []int64) (map[int64]*orderdoc.Document, error)
}

// Orders tells whether an order was ever placed, from the command side's
// source of truth (the order's shard). The query side asks it only about
// an order it has no document of, so that a read waiting for a version of
// an order that does not exist is refused at once instead of holding a
// wait.
type Orders interface {
	// Exists reports whether the order is on its shard; an error when that
	// cannot be told (the shard is down, say).
	Exists(ctx context.Context, orderNo int64) (bool, error)
}

// ListQuery selects a page of orders. Exactly one of UserID and ShopID is
// set; Status only filters a shop's orders.
type ListQuery struct {
	UserID string
	ShopID string
	// Status is a status name; empty means every status.
	Status string
	// After is the last order of the previous page; nil for the first page.
	After *Position
	Limit int
}

// Config tunes the use cases.
type Config struct {
	// MinVersionWait is the longest a read with a minimum version waits for
	// the projector before answering with an older document.
	MinVersionWait time.Duration
	// PollInterval is how often the document is read again while waiting;
	// zero means DefaultPollInterval.
	PollInterval time.Duration
	// MaxWaiting is the most reads that wait for a version at once; a read
	// that would wait beyond it fails at once with ErrTooManyWaiting. Zero
	// means DefaultMaxWaiting.
	MaxWaiting int
	// PollBatch is the most order numbers one poll query asks for; the poll
	// splits the waiting orders into queries of at most this many. Zero
	// means DefaultPollBatch.
	PollBatch int
}

// Defaults of Config.
const (
	// DefaultPollInterval is the re-read interval while waiting for a version.
	DefaultPollInterval = 25 * time.Millisecond
	// DefaultMaxWaiting bounds the waiting reads of one instance: about
	// twice the reads waiting at once when every order of a 1,000 orders/s
	// peak is read back right after it was placed (freshness p99 ~1 s).
	// A waiting read holds a goroutine and a request; its share of the
	// poll is one order number.
	DefaultMaxWaiting = 2000
	// DefaultPollBatch keeps one poll query's {_id: {$in: [...]}} small
	// enough to be served from the _id index in one short round trip.
	DefaultPollBatch = 500
)

// A wait leaves a tenth of the time to the request's own deadline unused,
// within these bounds, so that the answer still reaches the caller in time.
const (
	minDeadlineReserve = 20 * time.Millisecond
	maxDeadlineReserve = 200 * time.Millisecond
)

// Service runs the use cases.
type Service struct {
	store   Store
	orders  Orders
	access  auth.OrderAccess
	cfg     Config
	waiters *waiters
	stop    context.CancelFunc
}

// New returns the use cases over store. orders, when not nil, is asked
// whether an order with no document exists before a read waits for it; nil
// means no source of truth is configured, and such a read waits as any
// other (the document may only be late). access decides whether the
// caller may see an order (auth.Unprotected with authentication off).
func New(store Store, orders Orders, access auth.OrderAccess, cfg Config) (*Service, error) {
	if store == nil {
		return nil, errors.New("app: store is required")
	}
	if access == nil {
		return nil, errors.New("app: the order access check is required (auth.Unprotected when authentication is off)")
	}
	if cfg.MinVersionWait < 0 {
		return nil, fmt.Errorf("app: min version wait must not be negative, got %s", cfg.MinVersionWait)
	}
	if cfg.PollInterval < 0 {
		return nil, fmt.Errorf("app: poll interval must not be negative, got %s", cfg.PollInterval)
	}
	if cfg.MaxWaiting < 0 {
		return nil, fmt.Errorf("app: max waiting reads must not be negative, got %d", cfg.MaxWaiting)
	}
	if cfg.PollBatch < 0 {
		return nil, fmt.Errorf("app: poll batch must not be negative, got %d", cfg.PollBatch)
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.MaxWaiting == 0 {
		cfg.MaxWaiting = DefaultMaxWaiting
	}
	if cfg.PollBatch == 0 {
		cfg.PollBatch = DefaultPollBatch
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Service{store: store, orders: orders, access: access, cfg: cfg, waiters: newWaiters(store, cfg.PollInterval, cfg.MaxWaiting, cfg.PollBatch), stop: stop}
	go s.waiters.run(ctx)
	return s, nil
}

// Close stops the background poll of the waiting reads.
func (s *Service) Close() { s.stop() }

// OrderView is one order as the read side has it.
type OrderView struct {
	Order *orderdoc.Document
	// Stale is true when a minimum version was asked for and the document
	// had not reached it when the wait ended.
	Stale bool
}

// GetOrder reads an order. With minVersion > 0 it re-reads the document
// until its version reaches minVersion, for at most the configured wait and
// never past ctx's deadline, and then answers with what there is. An order
// with no document that its shard does not have either is ErrNotFound at
// once: it was never placed, so no version of it will come (an order just
// placed, which the projector has not reached yet, is on its shard and is
// waited for). When the shard cannot tell, the read waits: the document may
// only be late. A read that would wait while MaxWaiting reads already do
// fails at once with ErrTooManyWaiting.
//
// The caller sees only an order it may (auth.OrderAccess.CheckOrder, with
// the document's user and shop); an order without a document is refused
// to a user or a shop exactly as another's order is (CheckMissing), so
// that a caller learns nothing of orders that are not its own, not even
// whether they exist. Refusing (403) rather than pretending an order is
// absent (404) keeps one answer for "not yours" across the command and
// query APIs; the price is that a user reading its own order before the
// projector wrote it is refused until the document exists, which a read
// with minVersion waits for.
func (s *Service) GetOrder(ctx context.Context, orderNo int64, minVersion int32) (*OrderView, error) {
	if err := ValidateGet(orderNo, minVersion); err != nil {
		return nil, err
	}
	view, err := s.getOrder(ctx, orderNo, minVersion)
	switch {
	case errors.Is(err, ErrNotFound):
		if err := s.access.CheckMissing(ctx); err != nil {
			return nil, fmt.Errorf("reading order %d: %w", orderNo, err)
		}
	case err == nil:
		if err := s.checkOrder(ctx, view.Order); err != nil {
			return nil, err
		}
	}
	return view, err
}

func (s *Service) checkOrder(ctx context.Context, doc *orderdoc.Document) error {
	if err := s.access.CheckOrder(ctx, auth.Owner{User: doc.UserID, Shop: doc.ShopID}); err != nil {
		return fmt.Errorf("reading order %d: %w", doc.OrderNo, err)
	}
	return nil
}

func (s *Service) getOrder(ctx context.Context, orderNo int64, minVersion int32) (*OrderView, error) {
	doc, err := s.get(ctx, orderNo)
	if err != nil {
		return nil, err
	}
	if minVersion == 0 || (doc != nil && doc.Version >= minVersion) {
		return found(doc, false)
	}
	if doc != nil {
		// An order's user and shop never change: a caller it is not for is
		// refused now rather than given a waiting place.
		if err := s.checkOrder(ctx, doc); err != nil {
			return nil, err
		}
	}
	wait := s.cfg.MinVersionWait
	if deadline, ok := ctx.Deadline(); ok {
		remaining := time.Until(deadline)
		wait = min(wait, remaining-min(max(remaining/10, minDeadlineReserve), maxDeadlineReserve))
	}
	if wait <= 0 {
		return found(doc, true)
	}
	if doc == nil && s.orders != nil {
		exists, err := s.orders.Exists(ctx, orderNo)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		// An error (the shard is down) is not an answer: the read waits.
		if err == nil && !exists {
			return nil, ErrNotFound
		}
	}
	wt, ok := s.waiters.add(orderNo, minVersion)
	if !ok {
		return nil, ErrTooManyWaiting
	}
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	select {
	case <-wt.done:
		// The poll that released the wait read the document: no read again.
		return found(wt.doc, false)
	case <-waitCtx.Done():
		s.waiters.remove(orderNo, wt)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	latest, err := s.get(ctx, orderNo)
	if err != nil {
		return nil, err
	}
	if latest != nil {
		doc = latest
	}
	return found(doc, doc == nil || doc.Version < minVersion)
}

// get reads a document and reports an absent one as nil without an error.
func (s *Service) get(ctx context.Context, orderNo int64) (*orderdoc.Document, error) {
	doc, err := s.store.Get(ctx, orderNo)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading order %d: %w", orderNo, err)
	}
	return doc, nil
}

func found(doc *orderdoc.Document, stale bool) (*OrderView, error) {
	if doc == nil {
		return nil, ErrNotFound
	}
	return &OrderView{Order: doc, Stale: stale}, nil
}

// Page is one page of a list.
type Page struct {
	Orders []orderdoc.Document
	// NextPageToken continues the list; empty on the last page.
	NextPageToken string
}

// ListUserOrders returns a page of a user's orders, newest first, across
// every shard.
func (s *Service) ListUserOrders(ctx context.Context, userID string, pageSize int32, pageToken string) (*Page, error) {
	query := fingerprint("user", userID)
	var v validation.Violations
	checkID(&v, "userId", userID)
	limit, after := checkPage(&v, pageSize, pageToken, query)
	if err := v.Err(); err != nil {
		return nil, err
	}
	return s.list(ctx, ListQuery{UserID: userID, After: after, Limit: limit}, query)
}

// ListShopOrders returns a page of a shop's orders, newest first, of one
// status when status is not empty.
func (s *Service) ListShopOrders(ctx context.Context, shopID, status string, pageSize int32, pageToken string) (*Page, error) {
	query := fingerprint("shop", shopID, status)
	var v validation.Violations
	checkID(&v, "shopId", shopID)
	checkStatus(&v, status)
	limit, after := checkPage(&v, pageSize, pageToken, query)
	if err := v.Err(); err != nil {
		return nil, err
	}
	return s.list(ctx, ListQuery{ShopID: shopID, Status: status, After: after, Limit: limit}, query)
}

// list reads one order more than the page holds: if it comes back, there is
// a next page, and the page's last order is where it starts.
func (s *Service) list(ctx context.Context, q ListQuery, query string) (*Page, error) {
	pageSize := q.Limit
	q.Limit++
	docs, err := s.store.List(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("listing orders: %w", err)
	}
	page := &Page{Orders: docs}
	if len(docs) > pageSize {
		page.Orders = docs[:pageSize]
		last := page.Orders[pageSize-1]
		page.NextPageToken = EncodePageToken(Position{PlacedAt: last.PlacedAt, PlacedAtMicros: last.PlacedAtMicros, OrderNo: last.OrderNo}, query)
	}
	return page, nil
}
