// Package validation is the one shape of a bad request in orderflow: the
// field violations a use case finds, collected into one error. It has no
// dependencies, so domain packages can return it; the ports turn it into
// INVALID_ARGUMENT with a google.rpc.BadRequest (server.InvalidArgument).
package validation

import "strings"

// FieldViolation is one bad field of a request: Field is the JSON path in
// lowerCamelCase (for example "items[2].quantity").
type FieldViolation struct {
	Field       string
	Description string
}

// Error lists every invalid field of a request. The use cases of every
// service return it, and the ports turn it into INVALID_ARGUMENT with one
// google.rpc.BadRequest field violation per entry.
type Error struct {
	Violations []FieldViolation
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.Field + ": " + v.Description
	}
	return "invalid request: " + strings.Join(parts, "; ")
}

// Invalid is an *Error naming one field.
func Invalid(field, description string) error {
	return &Error{Violations: []FieldViolation{{Field: field, Description: description}}}
}

// Violations collects the bad fields of a request as they are found.
type Violations []FieldViolation

// Add records one bad field.
func (v *Violations) Add(field, description string) {
	*v = append(*v, FieldViolation{Field: field, Description: description})
}

// Err is nil when nothing was added, else an *Error of every
// violation added, in order.
func (v Violations) Err() error {
	if len(v) == 0 {
		return nil
	}
	return &Error{Violations: v}
}
