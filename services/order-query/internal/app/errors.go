package app

import "errors"

// ErrNotFound means the read side has no document for the order (yet: the
// projector may not have reached it).
var ErrNotFound = errors.New("order not found")

// ErrUnavailable marks a failure to reach the document store; the caller may
// retry.
var ErrUnavailable = errors.New("order store unavailable")

// ErrTooManyWaiting means the read would wait for a version while the
// configured number of reads already wait; the caller may retry shortly,
// or read without a minimum version.
var ErrTooManyWaiting = errors.New("too many reads waiting for a version")
