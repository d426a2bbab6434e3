// Package app holds the command side's use cases: place an order, advance
// it, cancel it, read it. It validates input, applies the domain rules, and
// leaves transactions and routing to the repository.
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/orderflow/orderflow/services/order-command/internal/domain"
	"github.com/orderflow/orderflow/shared/auth"
	"github.com/orderflow/orderflow/shared/lifecycle/retention"
	"github.com/orderflow/orderflow/shared/shard"
)

// Repository stores orders on their shards. Every method runs one local
// transaction on the order's shard, writing the order and its outbox event
// together.
type Repository interface {
	// Place stores a new order and its event on loc's shard. If the shard
	// already has an order with the same request id it stores nothing and
	// returns that order with created=false. topo is the snapshot loc was
	// taken from.
	Place(ctx context.Context, topo shard.Topology, loc shard.Location, o *domain.Order, ev domain.Event) (stored *domain.Order, created bool, err error)
	// Update locks the order, lets change modify it and return the event,
	// then stores both. Concurrent updates of one order run one after another.
	Update(ctx context.Context, orderNo int64, change func(o *domain.Order) (domain.Event, error)) (*domain.Order, error)
	// Get reads an order.
	Get(ctx context.Context, orderNo int64) (*domain.Order, error)
	// FindByRequestID reads the order a request created on a shard.
	FindByRequestID(ctx context.Context, shard, requestID string) (*domain.Order, error)
}

// NumberAllocator hands out order numbers that route to the given location
// of topo, the snapshot the location was taken from.
type NumberAllocator interface {
	Next(ctx context.Context, topo shard.Topology, loc shard.Location) (int64, error)
}

// Clock tells the time; tests inject a fixed one.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

// Config holds the rules the use cases apply.
type Config struct {
	// CancelWindow is how long after placing an order it can be changed:
	// advanced or cancelled. At most retention.Min, so no order that can be
	// changed is purged.
	CancelWindow time.Duration
	// RetryWindow is how long after a shard is added a PlaceOrder retry
	// also looks for its order on the shard the previous epoch chose.
	RetryWindow time.Duration
}

// Service runs the use cases.
type Service struct {
	repo        Repository
	numbers     NumberAllocator
	topology    func() shard.Topology
	clock       Clock
	cfg         Config
	traceparent func(context.Context) string
	access      auth.OrderAccess
}

// New returns the use cases over their dependencies. topology returns the
// current topology (it grows when a shard is added); traceparent extracts
// the caller's W3C trace context for the outbox row; access decides whether
// the caller may read or change an order once it is loaded
// (auth.Unprotected with authentication off).
func New(repo Repository, numbers NumberAllocator, topology func() shard.Topology, clock Clock, cfg Config, traceparent func(context.Context) string,
	access auth.OrderAccess) (*Service, error) {
	if access == nil {
		return nil, errors.New("the order access check is required (auth.Unprotected when authentication is off)")
	}
	if err := retention.ValidateChangeWindow(cfg.CancelWindow); err != nil {
		return nil, fmt.Errorf("cancel window: %w", err)
	}
	if err := topology().Validate(); err != nil {
		return nil, err
	}
	return &Service{repo: repo, numbers: numbers, topology: topology, clock: clock, cfg: cfg, traceparent: traceparent, access: access}, nil
}

// PlaceOrder validates the request and places the order exactly once per
// request id: the request id picks the shard, and that shard's unique index
// on it turns a retry into a read of the first order.
//
// The request reads the topology once and uses that snapshot throughout (the
// retry lookup, the shard, the number, the routing check): the topology may
// be reloaded meanwhile, and mixing two of them could place an order by one
// epoch list and number it by another.
func (s *Service) PlaceOrder(ctx context.Context, req domain.PlaceRequest) (*domain.Order, error) {
	total, err := req.Validate()
	if err != nil {
		return nil, err
	}
	topo := s.topology()
	if prev, ok := topo.PreviousPlacement(req.RequestID, s.clock.Now(), s.cfg.RetryWindow); ok {
		existing, err := s.repo.FindByRequestID(ctx, prev.Shard, req.RequestID)
		switch {
		case err == nil && existing.RequestHash != req.Hash():
			return nil, domain.ErrRequestIDReused
		case err == nil:
			return existing, nil
		case !errors.Is(err, domain.ErrNotFound):
			return nil, fmt.Errorf("looking for a retried request on %s: %w", prev.Shard, err)
		}
	}
	loc := topo.PlaceRequest(req.RequestID)
	no, err := s.numbers.Next(ctx, topo, loc)
	if err != nil {
		return nil, fmt.Errorf("allocating an order number: %w", err)
	}
	order := domain.NewOrder(no, req, total, s.clock.Now())
	ev, err := s.stamp(ctx, order.PlacedEvent())
	if err != nil {
		return nil, err
	}
	stored, created, err := s.repo.Place(ctx, topo, loc, order, ev)
	if err != nil {
		return nil, fmt.Errorf("placing order: %w", err)
	}
	if !created && stored.RequestHash != order.RequestHash {
		return nil, domain.ErrRequestIDReused
	}
	return stored, nil
}

// AdvanceOrder moves an order one step forward within the cancel window.
func (s *Service) AdvanceOrder(ctx context.Context, orderNo int64, to domain.Status) (*domain.Order, error) {
	if err := domain.ValidateOrderNo(orderNo); err != nil {
		return nil, err
	}
	if err := domain.ValidateTargetStatus(to); err != nil {
		return nil, err
	}
	return s.update(ctx, orderNo, func(o *domain.Order) (domain.Event, error) {
		return o.Advance(to, s.clock.Now(), s.cfg.CancelWindow)
	})
}

// CancelOrder cancels an order within the cancel window.
func (s *Service) CancelOrder(ctx context.Context, orderNo int64, reason string) (*domain.Order, error) {
	if err := domain.ValidateOrderNo(orderNo); err != nil {
		return nil, err
	}
	if err := domain.ValidateReason(reason); err != nil {
		return nil, err
	}
	return s.update(ctx, orderNo, func(o *domain.Order) (domain.Event, error) {
		return o.Cancel(reason, s.clock.Now(), s.cfg.CancelWindow)
	})
}

// GetOrder reads an order from its shard.
func (s *Service) GetOrder(ctx context.Context, orderNo int64) (*domain.Order, error) {
	if err := domain.ValidateOrderNo(orderNo); err != nil {
		return nil, err
	}
	o, err := s.repo.Get(ctx, orderNo)
	if errors.Is(err, domain.ErrNotFound) {
		// A caller that may see only its own orders is refused an absent
		// order as it is another's: existence is not told.
		if err := s.access.CheckMissing(ctx); err != nil {
			return nil, fmt.Errorf("reading order %d: %w", orderNo, err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reading order %d: %w", orderNo, err)
	}
	if err := s.access.CheckOrder(ctx, auth.Owner{User: o.UserID, Shop: o.ShopID}); err != nil {
		return nil, fmt.Errorf("reading order %d: %w", orderNo, err)
	}
	return o, nil
}

func (s *Service) update(ctx context.Context, orderNo int64, change func(o *domain.Order) (domain.Event, error)) (*domain.Order, error) {
	o, err := s.repo.Update(ctx, orderNo, func(o *domain.Order) (domain.Event, error) {
		// Inside the order's transaction, before the domain rules: a caller
		// the order is not for changes nothing and learns nothing of its
		// state.
		if err := s.access.CheckOrder(ctx, auth.Owner{User: o.UserID, Shop: o.ShopID}); err != nil {
			return domain.Event{}, err
		}
		ev, err := change(o)
		if err != nil {
			return domain.Event{}, err
		}
		return s.stamp(ctx, ev)
	})
	if errors.Is(err, domain.ErrNotFound) {
		// As in GetOrder: an absent order is refused as another's.
		if err := s.access.CheckMissing(ctx); err != nil {
			return nil, fmt.Errorf("changing order %d: %w", orderNo, err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("changing order %d: %w", orderNo, err)
	}
	return o, nil
}

// stamp gives an event its id (time-ordered, unique) and the caller's trace.
func (s *Service) stamp(ctx context.Context, ev domain.Event) (domain.Event, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return domain.Event{}, fmt.Errorf("generating event id: %w", err)
	}
	ev.ID = id.String()
	ev.Traceparent = s.traceparent(ctx)
	return ev, nil
}
