// Package projection turns zero-payload internal events into the read side:
// it re-reads each event's order from its shard (the source of truth), writes
// the order's MongoDB document when the shard holds a newer version than the
// document, and emits one external event per order version for other domains.
// Everything it writes is guarded by versions, so duplicate, late and
// reordered events change nothing.
package projection

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/orderdoc"
	"github.com/orderflow/orderflow/shared/orderenum"
	"github.com/orderflow/orderflow/shared/projection/source"
)

// Source reads orders from their shards.
type Source interface {
	Read(ctx context.Context, orderNos []int64) (map[int64]source.Order, error)
}

// DocState is what the read side already holds of an order.
type DocState struct {
	Version         int32
	ExternalVersion int32
}

// Store is the MongoDB collection of order documents.
type Store interface {
	States(ctx context.Context, orderNos []int64) (map[int64]DocState, error)
	// Write applies a batch in one round trip: each document as a
	// compare-and-set on the version read (Write.Read, 0 for none), and each
	// external-only mark raising externalVersion. It returns how many
	// documents it found changed meanwhile.
	Write(ctx context.Context, w Write) (conflicts int, err error)
}

// Write is one batch's change to the read side.
type Write struct {
	// Docs are the documents to store, each with its ExternalVersion set.
	Docs []orderdoc.Document
	// Read is the version each document was read at (0: absent).
	Read map[int64]int32
	// ExternalOnly raises externalVersion of documents that are current but
	// whose external events lag (a document written before they were
	// recorded with it).
	ExternalOnly map[int64]int32
}

// External publishes external events, all or an error.
type External interface {
	Publish(ctx context.Context, events []*eventsv1.OrderExternalEvent) error
}

// ErrConflict means another writer changed a document between the read and
// the write; applying the batch again re-reads and converges.
var ErrConflict = errors.New("documents changed while the batch was applied")

// Result counts what a batch did.
type Result struct {
	// Projected orders whose document was written.
	Projected int
	// Current orders whose document was already at the shard's version.
	Current int
	// Missing orders that are not on their shard (purged after 30 days, or
	// never placed): skipped, not retried.
	Missing []int64
	// External events published.
	External int
}

// Projector applies batches of internal events.
type Projector struct {
	// refresh reloads the shard topology now and reports whether it grew;
	// nil when the topology is fixed.
	refresh  func() bool
	source   Source
	store    Store
	external External
	now      func() time.Time
}

// New returns a projector. refresh (may be nil) reloads the shard topology
// on demand: an order missing from the shard its number routes to may belong
// to an epoch added a moment ago, which the periodic reload has not seen yet.
func New(src Source, store Store, external External, now func() time.Time, refresh func() bool) *Projector {
	return &Projector{source: src, store: store, external: external, now: now, refresh: refresh}
}

// Project applies a batch: one read per shard, then one read and one bulk
// write to MongoDB, with the batch's external events published in between.
// They go out before the write that records them, so an error or a crash
// leaves nothing that a retry of the same batch would not finish: at worst it
// publishes an event again, under the same id.
//
// An order re-read in a state no document can be made of (see Validate)
// fails the whole batch before anything is written, with an error joining
// one *InvalidOrderError per such order.
func (p *Projector) Project(ctx context.Context, events []*eventsv1.OrderEvent) (Result, error) {
	var res Result
	seen := map[int64]bool{}
	var nos []int64
	for _, e := range events {
		if !seen[e.GetOrderNo()] {
			seen[e.GetOrderNo()] = true
			nos = append(nos, e.GetOrderNo())
		}
	}
	orders, err := p.read(ctx, nos)
	if err != nil {
		return res, err
	}
	present := make([]int64, 0, len(orders))
	var invalid []error
	for _, no := range nos {
		o, ok := orders[no]
		if !ok {
			res.Missing = append(res.Missing, no)
			continue
		}
		if err := Validate(o); err != nil {
			invalid = append(invalid, err)
			continue
		}
		present = append(present, no)
	}
	if len(invalid) > 0 {
		// Nothing is written: the caller sets the events of these orders
		// aside (InvalidOrders lists them) and applies the rest again.
		return res, fmt.Errorf("validating orders: %w", errors.Join(invalid...))
	}
	if len(present) == 0 {
		return res, nil
	}
	stepCtx, end := startStep(ctx, "read documents", trace.SpanKindClient, present, dbMongo)
	states, err := p.store.States(stepCtx, present)
	end(err)
	if err != nil {
		return res, fmt.Errorf("reading documents: %w", err)
	}
	now := p.now().UTC()
	w := Write{Read: map[int64]int32{}, ExternalOnly: map[int64]int32{}}
	var external []*eventsv1.OrderExternalEvent
	for _, no := range present {
		o, st := orders[no], states[no]
		if o.Version > st.ExternalVersion {
			for v := st.ExternalVersion + 1; v <= o.Version; v++ {
				if ev, ok := ExternalEvent(o, v); ok {
					external = append(external, ev)
				}
			}
		}
		switch {
		case o.Version > st.Version:
			d := Document(o, now)
			d.ExternalVersion = o.Version
			w.Docs = append(w.Docs, d)
			w.Read[no] = st.Version
		case o.Version > st.ExternalVersion:
			res.Current++
			w.ExternalOnly[no] = o.Version
		default:
			res.Current++
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err // the session ended: another instance takes the batch over
	}
	if len(external) > 0 {
		stepCtx, end := startStep(ctx, "publish external events", trace.SpanKindProducer, externalOrders(external),
			attribute.String("messaging.system", "kafka"), attribute.String("messaging.operation.type", "send"))
		err := p.external.Publish(stepCtx, external)
		end(err)
		if err != nil {
			return res, fmt.Errorf("publishing external events: %w", err)
		}
	}
	if len(w.Docs) > 0 || len(w.ExternalOnly) > 0 {
		stepCtx, end := startStep(ctx, "write documents", trace.SpanKindClient, present, dbMongo)
		conflicts, err := p.store.Write(stepCtx, w)
		if err == nil && conflicts > 0 {
			end(fmt.Errorf("%w: %d documents", ErrConflict, conflicts))
		} else {
			end(err)
		}
		if err != nil {
			return res, fmt.Errorf("writing documents: %w", err)
		}
		if conflicts > 0 {
			return res, fmt.Errorf("%w: %d documents", ErrConflict, conflicts)
		}
	}
	res.Projected = len(w.Docs)
	res.External = len(external)
	return res, nil
}

// dbMongo marks the spans of the read store's steps.
var dbMongo = attribute.String("db.system.name", "mongodb")

// read re-reads the orders from their shards (again after a topology
// reload when some are missing), as one step of every event's trace.
func (p *Projector) read(ctx context.Context, nos []int64) (map[int64]source.Order, error) {
	stepCtx, end := startStep(ctx, "reread orders", trace.SpanKindClient, nos, attribute.String("db.system.name", "mysql"))
	orders, err := p.source.Read(stepCtx, nos)
	if err == nil && len(orders) < len(nos) && p.refresh != nil && p.refresh() {
		orders, err = p.source.Read(stepCtx, nos)
	}
	end(err)
	if err != nil {
		return nil, fmt.Errorf("reading orders: %w", err)
	}
	return orders, nil
}

// externalOrders lists the orders of external events, once each.
func externalOrders(events []*eventsv1.OrderExternalEvent) []int64 {
	var nos []int64
	for i, e := range events {
		if i == 0 || e.GetOrder().GetOrderNo() != events[i-1].GetOrder().GetOrderNo() {
			nos = append(nos, e.GetOrder().GetOrderNo())
		}
	}
	return nos
}

// Document is the read-side document of an order's current state.
func Document(o source.Order, projectedAt time.Time) orderdoc.Document {
	d := orderdoc.Document{
		OrderNo: o.OrderNo, UserID: o.UserID, ShopID: o.ShopID, Status: o.Status, TotalAmount: o.TotalAmount,
		DeliveryAddress: o.DeliveryAddress, PlacedAt: o.PlacedAt.UTC(), PlacedAtMicros: o.PlacedAt.UnixMicro(), UpdatedAt: o.UpdatedAt.UTC(),
		CancelReason: o.CancelReason, Version: o.Version, Shard: o.Shard, ProjectedAt: projectedAt,
		Items: make([]orderdoc.Item, len(o.Items)), StatusHistory: make([]orderdoc.StatusChange, len(o.History)),
	}
	for i, it := range o.Items {
		d.Items[i] = orderdoc.Item{MenuID: it.MenuID, Name: it.Name, Quantity: it.Quantity, UnitPrice: it.UnitPrice}
	}
	for i, c := range o.History {
		d.StatusHistory[i] = orderdoc.StatusChange{Status: c.Status, Version: c.Version, ChangedAt: c.ChangedAt.UTC()}
	}
	return d
}

// eventTypeFor is the stored name of the event an order emits when it
// reaches the status stored as status; "" for a name no status has.
func eventTypeFor(status string) string {
	s, ok := orderenum.ParseStatus(status)
	if !ok {
		return ""
	}
	t, _ := orderenum.EventTypeFor(s)
	name, _ := orderenum.EventTypeName(t)
	return name
}

// externalIDSpace namespaces the external event ids (UUIDv5 of order/version).
var externalIDSpace = uuid.MustParse("6f0d7a53-58c2-4b8e-9a55-0f1e2d3c4b5a")

// ExternalEventID is stable per (order, version), so a consumer can drop a
// copy it has seen.
func ExternalEventID(orderNo int64, version int32) string {
	return uuid.NewSHA1(externalIDSpace, []byte(strconv.FormatInt(orderNo, 10)+"/"+strconv.Itoa(int(version)))).String()
}

// ExternalEvent rebuilds the order as of version v from its history (the
// items and total never change; status, update time and history do; the
// cancel reason belongs to the cancel) and wraps it as an external event.
func ExternalEvent(o source.Order, v int32) (*eventsv1.OrderExternalEvent, bool) {
	idx := -1
	for i, c := range o.History {
		if c.Version == v {
			idx = i
			break
		}
	}
	if idx < 0 {
		return nil, false
	}
	c := o.History[idx]
	// The document as of version v, in the one shape the API shows orders.
	d := Document(o, time.Time{})
	d.Status, d.Version, d.UpdatedAt, d.StatusHistory = c.Status, v, c.ChangedAt, d.StatusHistory[:idx+1]
	order := orderdoc.Proto(&d)
	if order.Status != orderv1.Order_CANCELLED {
		order.CancelReason = ""
	}
	return &eventsv1.OrderExternalEvent{EventId: ExternalEventID(o.OrderNo, v), EventType: eventTypeFor(c.Status),
		Order: order, OccurredAt: timestamppb.New(c.ChangedAt)}, true
}
