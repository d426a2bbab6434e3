// Package domain holds the order aggregate of the command side: its states,
// the rules for moving between them, validation of new orders, and the
// zero-payload events every change produces. It does no I/O.
package domain

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strconv"
	"time"

	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/orderenum"
)

// Status is where an order is in its life. The values are the protocol's
// Order.Status enum, the one list of the statuses.
type Status int32

// The statuses of an order, in the order they are reached.
const (
	StatusUnspecified = Status(orderv1.Order_STATUS_UNSPECIFIED)
	StatusPlaced      = Status(orderv1.Order_PLACED)
	StatusAccepted    = Status(orderv1.Order_ACCEPTED)
	StatusDelivering  = Status(orderv1.Order_DELIVERING)
	StatusDelivered   = Status(orderv1.Order_DELIVERED)
	StatusCancelled   = Status(orderv1.Order_CANCELLED)
)

// String is the status's stored name (PLACED), or STATUS_UNSPECIFIED for
// no known status.
func (s Status) String() string {
	if n, ok := orderenum.StatusName(orderv1.Order_Status(s)); ok {
		return n
	}
	return orderv1.Order_STATUS_UNSPECIFIED.String()
}

// Known tells whether s is one of the statuses (not STATUS_UNSPECIFIED, nor
// a number the enum does not have).
func (s Status) Known() bool {
	_, ok := orderenum.StatusName(orderv1.Order_Status(s))
	return ok
}

// ParseStatus reads a status name as stored in the database.
func ParseStatus(name string) (Status, bool) {
	s, ok := orderenum.ParseStatus(name)
	return Status(s), ok
}

// next is the one status each status may advance to.
var next = map[Status]Status{
	StatusPlaced:     StatusAccepted,
	StatusAccepted:   StatusDelivering,
	StatusDelivering: StatusDelivered,
}

// EventType names an internal event. The values are the protocol's
// EventType enum, the one list of the event types.
type EventType int32

// The internal events of the order domain.
const (
	EventUnspecified     = EventType(eventsv1.EventType_EVENT_TYPE_UNSPECIFIED)
	EventOrderPlaced     = EventType(eventsv1.EventType_EVENT_TYPE_ORDER_PLACED)
	EventOrderAccepted   = EventType(eventsv1.EventType_EVENT_TYPE_ORDER_ACCEPTED)
	EventOrderDelivering = EventType(eventsv1.EventType_EVENT_TYPE_ORDER_DELIVERING)
	EventOrderDelivered  = EventType(eventsv1.EventType_EVENT_TYPE_ORDER_DELIVERED)
	EventOrderCancelled  = EventType(eventsv1.EventType_EVENT_TYPE_ORDER_CANCELLED)
)

// String is the event type's stored name (OrderPlaced), the outbox's
// event_type; "" for no known event type.
func (t EventType) String() string {
	n, _ := orderenum.EventTypeName(eventsv1.EventType(t))
	return n
}

// eventFor is the event an order emits when it reaches status to.
func eventFor(to Status) EventType {
	t, _ := orderenum.EventTypeFor(orderv1.Order_Status(to))
	return EventType(t)
}

// Event is a zero-payload internal event: which order, which change (the
// order's version after it), when. Consumers read the order's data from its
// shard.
type Event struct {
	ID          string
	Type        EventType
	OrderNo     int64
	Version     int32
	OccurredAt  time.Time
	Traceparent string
}

// Item is one line of an order.
type Item struct {
	MenuID    string
	Name      string
	Quantity  int32
	UnitPrice int64
}

// StatusChange is one entry of an order's history.
type StatusChange struct {
	Status    Status
	Version   int32
	ChangedAt time.Time
}

// Order is the aggregate the command side stores on one shard.
type Order struct {
	No              int64
	RequestID       string
	RequestHash     [32]byte
	UserID          string
	ShopID          string
	Items           []Item
	TotalAmount     int64
	DeliveryAddress string
	Status          Status
	CancelReason    string
	Version         int32
	PlacedAt        time.Time
	UpdatedAt       time.Time
	History         []StatusChange
}

// PlaceRequest is what a client sends to place an order.
type PlaceRequest struct {
	RequestID       string
	UserID          string
	ShopID          string
	Items           []Item
	DeliveryAddress string
}

// Hash fingerprints the request, so that a requestId reused for a
// different order can be told from a retry of the same one.
func (r PlaceRequest) Hash() [32]byte {
	h := sha256.New()
	field := func(s string) {
		_ = binary.Write(h, binary.BigEndian, uint32(len(s)))
		h.Write([]byte(s))
	}
	field(r.RequestID)
	field(r.UserID)
	field(r.ShopID)
	field(r.DeliveryAddress)
	for _, it := range r.Items {
		field(it.MenuID)
		field(it.Name)
		_ = binary.Write(h, binary.BigEndian, it.Quantity)
		_ = binary.Write(h, binary.BigEndian, it.UnitPrice)
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// NewOrder creates a PLACED order at version 1 from a validated request.
// The total must come from Validate.
func NewOrder(no int64, r PlaceRequest, total int64, now time.Time) *Order {
	now = now.UTC().Truncate(time.Microsecond)
	return &Order{
		No: no, RequestID: r.RequestID, RequestHash: r.Hash(), UserID: r.UserID, ShopID: r.ShopID,
		Items: slices.Clone(r.Items), TotalAmount: total, DeliveryAddress: r.DeliveryAddress,
		Status: StatusPlaced, Version: 1, PlacedAt: now, UpdatedAt: now,
		History: []StatusChange{{Status: StatusPlaced, Version: 1, ChangedAt: now}},
	}
}

// PlacedEvent is the event of a new order.
func (o *Order) PlacedEvent() Event {
	return Event{Type: EventOrderPlaced, OrderNo: o.No, Version: o.Version, OccurredAt: o.PlacedAt}
}

// Advance moves the order one step forward to the given status, if it was
// placed less than window ago. Past the window an order is final: it may be
// purged from its shard, and a change then would be lost.
func (o *Order) Advance(to Status, now time.Time, window time.Duration) (Event, error) {
	want, ok := next[o.Status]
	if !ok || to != want {
		return Event{}, transitionError(o.Status, to)
	}
	if now.Sub(o.PlacedAt) >= window {
		return Event{}, &RuleError{Rule: RuleChangeWindow, Message: "orders can be changed only within " +
			formatWindow(window) + " of being placed; this one was placed at " + o.PlacedAt.Format(time.RFC3339)}
	}
	return o.change(to, now), nil
}

// Cancel cancels the order if it is not cancelled yet and was placed less
// than window ago (the same window as Advance's).
func (o *Order) Cancel(reason string, now time.Time, window time.Duration) (Event, error) {
	if o.Status == StatusCancelled {
		return Event{}, &RuleError{Rule: RuleAlreadyCancelled, Message: "order is already cancelled"}
	}
	if now.Sub(o.PlacedAt) >= window {
		return Event{}, &RuleError{Rule: RuleCancelWindow, Message: "orders can be cancelled only within " +
			formatWindow(window) + " of being placed; this one was placed at " + o.PlacedAt.Format(time.RFC3339)}
	}
	o.CancelReason = reason
	return o.change(StatusCancelled, now), nil
}

func (o *Order) change(to Status, now time.Time) Event {
	now = now.UTC().Truncate(time.Microsecond)
	o.Status = to
	o.Version++
	o.UpdatedAt = now
	o.History = append(o.History, StatusChange{Status: to, Version: o.Version, ChangedAt: now})
	return Event{Type: eventFor(to), OrderNo: o.No, Version: o.Version, OccurredAt: now}
}

func transitionError(from, to Status) error {
	msg := "cannot move an order from " + from.String() + " to " + to.String()
	if to == StatusCancelled && from != StatusCancelled {
		return &RuleError{Rule: RuleStatusTransition, Message: msg + ": cancelling is its own operation (:cancel)"}
	}
	if want, ok := next[from]; ok {
		msg += ": orders advance one step at a time, the next status is " + want.String()
	} else {
		msg += ": " + from.String() + " is final"
	}
	return &RuleError{Rule: RuleStatusTransition, Message: msg}
}

func formatWindow(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		days := int(d / (24 * time.Hour))
		if days == 1 {
			return "1 day"
		}
		return strconv.Itoa(days) + " days"
	}
	return d.String()
}
