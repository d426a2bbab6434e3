package domain

import "errors"

// ErrNotFound means no order has the requested number.
var ErrNotFound = errors.New("order not found")

// ErrRequestIDReused means a requestId was sent again with a different order.
var ErrRequestIDReused = errors.New("requestId was already used for a different order")

// The business rules a change can break.
const (
	RuleStatusTransition = "STATUS_TRANSITION"
	RuleCancelWindow     = "CANCEL_WINDOW"
	// RuleChangeWindow refuses to advance an order placed longer ago than
	// the cancel window: it is final and may be purged.
	RuleChangeWindow     = "CHANGE_WINDOW"
	RuleAlreadyCancelled = "ALREADY_CANCELLED"
)

// RuleError is a change the order's current state does not allow.
type RuleError struct {
	// Rule is one of the Rule* constants.
	Rule    string
	Message string
}

func (e *RuleError) Error() string { return e.Message }
