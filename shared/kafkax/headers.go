package kafkax

// Header names of the order domain's messages: the contract between the
// services that write them and every tool that reads them.
const (
	// HeaderEventType is the event's type (OrderPlaced, ...), on internal
	// and external events.
	HeaderEventType = "event-type"
	// HeaderEventID is the event's id, stable across redeliveries.
	HeaderEventID = "event-id"
	// HeaderTraceparent is the W3C trace context the message continues: on
	// internal events the relay's publish span (a child of the write that
	// made the event), on external events the projector's span of the order.
	HeaderTraceparent = "traceparent"
)

// Headers the projector puts in front of a dead letter's own headers
// (orders.internal.dlq.v1); orderctl dlq reads them.
const (
	// DLQHeaderReason is the machine-readable reason: undecodable,
	// unknown_event_type, invalid_order_no, invalid_order or
	// retries_exhausted.
	DLQHeaderReason = "dlq-reason"
	// DLQHeaderError is the error's text.
	DLQHeaderError = "dlq-error"
	// DLQHeaderAttempts is how many times the event was tried, in decimal.
	DLQHeaderAttempts = "dlq-attempts"
	// DLQHeaderSource is topic/partition/offset of the original message.
	DLQHeaderSource = "dlq-source"
	// DLQHeaderAt is when it was dead-lettered, RFC 3339 with nanoseconds,
	// UTC.
	DLQHeaderAt = "dlq-at"
	// DLQHeaderEventType is the event's type, when the message decoded.
	DLQHeaderEventType = "dlq-event-type"
	// DLQHeaderOrderNo is the event's order number in decimal, when the
	// message decoded.
	DLQHeaderOrderNo = "dlq-order-no"
)

// The values of DLQHeaderReason.
const (
	// DLQReasonUndecodable: the message is not an OrderEvent protobuf.
	DLQReasonUndecodable = "undecodable"
	// DLQReasonUnknownEventType: an OrderEvent of a type the projector does
	// not know.
	DLQReasonUnknownEventType = "unknown_event_type"
	// DLQReasonInvalidOrderNo: an OrderEvent with an order number below 1.
	DLQReasonInvalidOrderNo = "invalid_order_no"
	// DLQReasonInvalidOrder: the order re-read from its shard fails
	// validation.
	DLQReasonInvalidOrder = "invalid_order"
	// DLQReasonRetriesExhausted: an event that kept failing for another
	// reason than an outage.
	DLQReasonRetriesExhausted = "retries_exhausted"
)

// DLQReasons lists every value of DLQHeaderReason.
func DLQReasons() []string {
	return []string{DLQReasonUndecodable, DLQReasonUnknownEventType, DLQReasonInvalidOrderNo, DLQReasonInvalidOrder, DLQReasonRetriesExhausted}
}
