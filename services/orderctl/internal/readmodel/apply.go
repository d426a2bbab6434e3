// Package readmodel re-projects orders into the read side from orderctl,
// through the projector's own code (shared/projection): Project re-reads each
// order from its shard, writes its document under the version guard and
// publishes the external events above the document's externalVersion. The
// operator commands built on it are the rebuild of the read model after the
// read store lost documents (page by page over the shards, rate-limited and
// resumable from a checkpoint), the repair of the orders verify found missing
// or stale, and the replay of dead letters (package dlq).
//
// External events: Project publishes every version above a document's
// externalVersion before it writes the document. A document that is gone
// has externalVersion 0, so rebuilding it republishes all of that order's
// external events under their stable event ids: at-least-once delivery, which
// consumers already handle by dropping ids they have seen. Recording
// externalVersion without publishing would claim events went out that may
// not have, so there is no mode that skips them.
package readmodel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"

	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	"github.com/orderflow/orderflow/shared/projection"
)

// Projector applies a batch of events to the read side (projection.Projector).
type Projector interface {
	Project(ctx context.Context, events []*eventsv1.OrderEvent) (projection.Result, error)
}

// ApplyConfig tunes how long an apply waits through a dependency outage.
type ApplyConfig struct {
	// MaxWait is how long one batch is retried (with exponential back-off)
	// before the command gives up with the last error. Default 2m.
	MaxWait time.Duration
	// InitialWait is the first wait between attempts. Default 200ms.
	InitialWait time.Duration
	// Logger receives one record per failed attempt. Default slog.Default().
	Logger *slog.Logger
}

func (c ApplyConfig) withDefaults() (ApplyConfig, error) {
	if c.MaxWait == 0 {
		c.MaxWait = 2 * time.Minute
	}
	if c.InitialWait == 0 {
		c.InitialWait = 200 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxWait < 0 || c.InitialWait < 0 {
		return c, errors.New("readmodel: MaxWait and InitialWait must not be negative")
	}
	return c, nil
}

// Applier projects orders by number, retrying a batch through outages of
// the shards, MongoDB or Kafka. Retrying is safe: Project is idempotent
// (version-guarded writes, stable external event ids).
type Applier struct {
	projector Projector
	cfg       ApplyConfig
}

// NewApplier returns an applier over projector.
func NewApplier(projector Projector, cfg ApplyConfig) (*Applier, error) {
	if projector == nil {
		return nil, errors.New("readmodel: a projector is required")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Applier{projector: projector, cfg: cfg}, nil
}

// Events are synthetic zero-payload events for orderNos: Project uses only
// the order number of an event and re-reads everything else from the shard.
func Events(orderNos []int64) []*eventsv1.OrderEvent {
	events := make([]*eventsv1.OrderEvent, len(orderNos))
	for i, no := range orderNos {
		events[i] = &eventsv1.OrderEvent{OrderNo: no}
	}
	return events
}

// Apply projects the orders, all or an error: on success every present
// order's document is at its shard's version and its external events were
// published; orders not on their shard are returned in Result.Missing.
func (a *Applier) Apply(ctx context.Context, orderNos []int64) (projection.Result, error) {
	if len(orderNos) == 0 {
		return projection.Result{}, nil
	}
	events := Events(orderNos)
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = a.cfg.InitialWait
	b.MaxInterval = 10 * time.Second
	attempt := 0
	res, err := backoff.Retry(ctx, func() (projection.Result, error) {
		attempt++
		res, err := a.projector.Project(ctx, events)
		if err != nil && ctx.Err() != nil {
			return res, backoff.Permanent(ctx.Err())
		}
		if err != nil {
			a.cfg.Logger.WarnContext(ctx, "re-projection failed, retrying",
				slog.Int("attempt", attempt), slog.Int("orders", len(orderNos)), slog.Any("error", err))
		}
		return res, err
	}, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(a.cfg.MaxWait))
	if err != nil {
		return res, fmt.Errorf("re-projecting %d orders (gave up after %d attempts): %w", len(orderNos), attempt, err)
	}
	return res, nil
}
