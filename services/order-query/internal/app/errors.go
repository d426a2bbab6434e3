package app

import (
	"errors"
	"strings"
)

// ErrNotFound means the read side has no document for the order (yet: the
// projector may not have reached it).
var ErrNotFound = errors.New("order not found")

// ErrUnavailable marks a failure to reach the document store; the caller may
// retry.
var ErrUnavailable = errors.New("order store unavailable")

// FieldViolation is one invalid field of a request, by its JSON name.
type FieldViolation struct {
	Field       string
	Description string
}

// ValidationError lists every invalid field of a request.
type ValidationError struct {
	Violations []FieldViolation
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.Field + ": " + v.Description
	}
	return "invalid request: " + strings.Join(parts, "; ")
}

// violations collects field violations and turns them into one error.
type violations []FieldViolation

func (v *violations) add(field, description string) {
	*v = append(*v, FieldViolation{Field: field, Description: description})
}

func (v violations) err() error {
	if len(v) == 0 {
		return nil
	}
	return &ValidationError{Violations: v}
}
