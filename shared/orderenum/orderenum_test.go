package orderenum_test

import (
	"slices"
	"testing"

	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/orderenum"
)

// The stored names are in the shards' tables, the read store and the
// topics: renaming an enum value must not change them silently.
func TestStoredNamesArePinned(t *testing.T) {
	t.Parallel()
	if got, want := orderenum.StatusNames(), []string{"PLACED", "ACCEPTED", "DELIVERING", "DELIVERED", "CANCELLED"}; !slices.Equal(got, want) {
		t.Errorf("StatusNames() = %v, want %v", got, want)
	}
	if got, want := orderenum.EventTypeNames(), []string{"OrderPlaced", "OrderAccepted", "OrderDelivering", "OrderDelivered", "OrderCancelled"}; !slices.Equal(got, want) {
		t.Errorf("EventTypeNames() = %v, want %v", got, want)
	}
}

func TestStatuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		status   orderv1.Order_Status
		stored   string
		known    bool
		event    eventsv1.EventType
		hasEvent bool
	}{
		{"placed", orderv1.Order_PLACED, "PLACED", true, eventsv1.EventType_EVENT_TYPE_ORDER_PLACED, true},
		{"accepted", orderv1.Order_ACCEPTED, "ACCEPTED", true, eventsv1.EventType_EVENT_TYPE_ORDER_ACCEPTED, true},
		{"delivering", orderv1.Order_DELIVERING, "DELIVERING", true, eventsv1.EventType_EVENT_TYPE_ORDER_DELIVERING, true},
		{"delivered", orderv1.Order_DELIVERED, "DELIVERED", true, eventsv1.EventType_EVENT_TYPE_ORDER_DELIVERED, true},
		{"cancelled", orderv1.Order_CANCELLED, "CANCELLED", true, eventsv1.EventType_EVENT_TYPE_ORDER_CANCELLED, true},
		{"unspecified is no status", orderv1.Order_STATUS_UNSPECIFIED, "", false, eventsv1.EventType_EVENT_TYPE_UNSPECIFIED, false},
		{"unknown number is refused", orderv1.Order_Status(42), "", false, eventsv1.EventType_EVENT_TYPE_UNSPECIFIED, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name, ok := orderenum.StatusName(tc.status)
			if name != tc.stored || ok != tc.known {
				t.Errorf("StatusName(%d) = %q, %v; want %q, %v", tc.status, name, ok, tc.stored, tc.known)
			}
			ev, ok := orderenum.EventTypeFor(tc.status)
			if ev != tc.event || ok != tc.hasEvent {
				t.Errorf("EventTypeFor(%d) = %v, %v; want %v, %v", tc.status, ev, ok, tc.event, tc.hasEvent)
			}
			if !tc.known {
				return
			}
			if back, ok := orderenum.ParseStatus(tc.stored); back != tc.status || !ok {
				t.Errorf("ParseStatus(%q) = %v, %v; want %v, true", tc.stored, back, ok, tc.status)
			}
			if back, ok := orderenum.StatusOf(ev); back != tc.status || !ok {
				t.Errorf("StatusOf(%v) = %v, %v; want %v, true", ev, back, ok, tc.status)
			}
		})
	}
}

func TestParseStatusRefuses(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "STATUS_UNSPECIFIED", "placed", "OrderPlaced", "REFUNDED"} {
		if s, ok := orderenum.ParseStatus(name); ok {
			t.Errorf("ParseStatus(%q) = %v, true; want false", name, s)
		}
	}
}

func TestEventTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		typ    eventsv1.EventType
		stored string
		known  bool
	}{
		{"placed", eventsv1.EventType_EVENT_TYPE_ORDER_PLACED, "OrderPlaced", true},
		{"cancelled", eventsv1.EventType_EVENT_TYPE_ORDER_CANCELLED, "OrderCancelled", true},
		{"unspecified is no type", eventsv1.EventType_EVENT_TYPE_UNSPECIFIED, "", false},
		{"unknown number is refused", eventsv1.EventType(42), "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name, ok := orderenum.EventTypeName(tc.typ)
			if name != tc.stored || ok != tc.known {
				t.Errorf("EventTypeName(%d) = %q, %v; want %q, %v", tc.typ, name, ok, tc.stored, tc.known)
			}
			if !tc.known {
				return
			}
			if back, ok := orderenum.ParseEventType(tc.stored); back != tc.typ || !ok {
				t.Errorf("ParseEventType(%q) = %v, %v; want %v, true", tc.stored, back, ok, tc.typ)
			}
			if !orderenum.KnownEventType(tc.stored) {
				t.Errorf("KnownEventType(%q) = false", tc.stored)
			}
		})
	}
	for _, name := range []string{"", "EVENT_TYPE_ORDER_PLACED", "ORDER_PLACED", "orderPlaced", "OrderRefunded", "Unspecified"} {
		if orderenum.KnownEventType(name) {
			t.Errorf("KnownEventType(%q) = true, want false", name)
		}
	}
}

// Every status has its event and every event type its status, so adding
// one to an enum without the other fails here.
func TestEveryStatusHasAnEventType(t *testing.T) {
	t.Parallel()
	statuses, types := orderenum.Statuses(), orderenum.EventTypes()
	if len(statuses) != len(types) {
		t.Fatalf("%d statuses, %d event types", len(statuses), len(types))
	}
	for _, s := range statuses {
		if _, ok := orderenum.EventTypeFor(s); !ok {
			t.Errorf("status %v has no event type", s)
		}
	}
	for _, e := range types {
		if _, ok := orderenum.StatusOf(e); !ok {
			t.Errorf("event type %v reaches no status", e)
		}
	}
}

// The lists are copies: a caller changing one changes nothing here.
func TestListsAreCopies(t *testing.T) {
	t.Parallel()
	orderenum.StatusNames()[0] = "X"
	orderenum.EventTypeNames()[0] = "X"
	orderenum.Statuses()[0] = 0
	orderenum.EventTypes()[0] = 0
	if orderenum.StatusNames()[0] != "PLACED" || orderenum.EventTypeNames()[0] != "OrderPlaced" ||
		orderenum.Statuses()[0] != orderv1.Order_PLACED || orderenum.EventTypes()[0] != eventsv1.EventType_EVENT_TYPE_ORDER_PLACED {
		t.Error("a list returned by the package shares its storage")
	}
}
