package app

import "errors"

// ErrNotFound means the read side has no document for the order (yet: the
// projector may not have reached it).
var ErrNotFound = errors.New("order not found")

// ErrUnavailable marks a failure to reach the document store; the caller may
// retry.
var ErrUnavailable = errors.New("order store unavailable")
