// Package orderenum names the order statuses and event types as they are
// stored: in the shards' orders and outbox tables, the read store's
// documents, the Kafka event-type header and the events' event_type field.
// Every name is derived from the proto enums (orderv1.Order_Status and
// eventsv1.EventType), so the enums are the one list of them. The stored
// names must not change without a migration; the package's tests pin them.
package orderenum

import (
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
)

// eventTypePrefix starts every EventType value name; what follows it is the
// stored name in UPPER_SNAKE_CASE.
const eventTypePrefix = "EVENT_TYPE_"

// eventForStatusPrefix starts the stored name of the event an order emits
// when it reaches a status; the status's name completes it.
const eventForStatusPrefix = "ORDER_"

// tables holds the names derived from the enums' descriptors. It is built
// once, when the package is initialised, and never changed.
type tables struct {
	statuses       []orderv1.Order_Status
	statusNames    []string
	eventTypes     []eventsv1.EventType
	eventTypeNames []string
	eventName      map[eventsv1.EventType]string
	eventByName    map[string]eventsv1.EventType
	eventForStatus map[orderv1.Order_Status]eventsv1.EventType
	statusForEvent map[eventsv1.EventType]orderv1.Order_Status
}

var names = build()

func build() tables {
	t := tables{
		eventName:      map[eventsv1.EventType]string{},
		eventByName:    map[string]eventsv1.EventType{},
		eventForStatus: map[orderv1.Order_Status]eventsv1.EventType{},
		statusForEvent: map[eventsv1.EventType]orderv1.Order_Status{},
	}
	statuses := orderv1.Order_STATUS_UNSPECIFIED.Descriptor().Values()
	for i := range statuses.Len() {
		v := statuses.Get(i)
		if v.Number() == 0 {
			continue
		}
		t.statuses = append(t.statuses, orderv1.Order_Status(v.Number()))
		t.statusNames = append(t.statusNames, string(v.Name()))
	}
	events := eventsv1.EventType_EVENT_TYPE_UNSPECIFIED.Descriptor().Values()
	for i := range events.Len() {
		v := events.Get(i)
		if v.Number() == 0 {
			continue
		}
		et := eventsv1.EventType(v.Number())
		snake := strings.TrimPrefix(string(v.Name()), eventTypePrefix)
		name := upperCamel(snake)
		t.eventTypes = append(t.eventTypes, et)
		t.eventTypeNames = append(t.eventTypeNames, name)
		t.eventName[et] = name
		t.eventByName[name] = et
		if status, ok := strings.CutPrefix(snake, eventForStatusPrefix); ok {
			if s := statuses.ByName(protoreflect.Name(status)); s != nil && s.Number() != 0 {
				t.eventForStatus[orderv1.Order_Status(s.Number())] = et
				t.statusForEvent[et] = orderv1.Order_Status(s.Number())
			}
		}
	}
	return t
}

// upperCamel turns ORDER_PLACED into OrderPlaced.
func upperCamel(snake string) string {
	var b strings.Builder
	for word := range strings.SplitSeq(snake, "_") {
		if word == "" {
			continue
		}
		b.WriteString(word[:1])
		b.WriteString(strings.ToLower(word[1:]))
	}
	return b.String()
}

// Statuses are the statuses an order can have (every one but
// STATUS_UNSPECIFIED), in lifecycle order.
func Statuses() []orderv1.Order_Status {
	return append([]orderv1.Order_Status(nil), names.statuses...)
}

// StatusNames are the stored names of Statuses, in the same order.
func StatusNames() []string {
	return append([]string(nil), names.statusNames...)
}

// StatusName is the stored name of s ("PLACED"); false for
// STATUS_UNSPECIFIED and for a number the enum does not have.
func StatusName(s orderv1.Order_Status) (string, bool) {
	if s == orderv1.Order_STATUS_UNSPECIFIED {
		return "", false
	}
	name, ok := orderv1.Order_Status_name[int32(s)]
	return name, ok
}

// ParseStatus reads a stored status name; false for a name no status has,
// STATUS_UNSPECIFIED included.
func ParseStatus(name string) (orderv1.Order_Status, bool) {
	n, ok := orderv1.Order_Status_value[name]
	if !ok || n == 0 {
		return orderv1.Order_STATUS_UNSPECIFIED, false
	}
	return orderv1.Order_Status(n), true
}

// EventTypes are the event types of the order domain (every one but
// EVENT_TYPE_UNSPECIFIED), in enum order.
func EventTypes() []eventsv1.EventType {
	return append([]eventsv1.EventType(nil), names.eventTypes...)
}

// EventTypeNames are the stored names of EventTypes, in the same order.
func EventTypeNames() []string {
	return append([]string(nil), names.eventTypeNames...)
}

// EventTypeName is the stored name of t ("OrderPlaced"); false for
// EVENT_TYPE_UNSPECIFIED and for a number the enum does not have.
func EventTypeName(t eventsv1.EventType) (string, bool) {
	name, ok := names.eventName[t]
	return name, ok
}

// ParseEventType reads a stored event type name; false for a name no event
// type has.
func ParseEventType(name string) (eventsv1.EventType, bool) {
	t, ok := names.eventByName[name]
	return t, ok
}

// KnownEventType tells whether name is the stored name of an event type.
func KnownEventType(name string) bool {
	_, ok := names.eventByName[name]
	return ok
}

// EventTypeFor is the event an order emits when it reaches status s; false
// when no event type is named for s.
func EventTypeFor(s orderv1.Order_Status) (eventsv1.EventType, bool) {
	t, ok := names.eventForStatus[s]
	return t, ok
}

// StatusOf is the status an order reaches with an event of type t; false
// for EVENT_TYPE_UNSPECIFIED and unknown numbers.
func StatusOf(t eventsv1.EventType) (orderv1.Order_Status, bool) {
	s, ok := names.statusForEvent[t]
	return s, ok
}
