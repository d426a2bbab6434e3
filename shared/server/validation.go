package server

import "strings"

// ValidationError lists every invalid field of a request. The use cases of
// every service return it, and the ports turn it into INVALID_ARGUMENT with
// one google.rpc.BadRequest field violation per entry (InvalidArgument).
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

// Invalid is a *ValidationError naming one field.
func Invalid(field, description string) error {
	return &ValidationError{Violations: []FieldViolation{{Field: field, Description: description}}}
}

// Violations collects the bad fields of a request as they are found.
type Violations []FieldViolation

// Add records one bad field.
func (v *Violations) Add(field, description string) {
	*v = append(*v, FieldViolation{Field: field, Description: description})
}

// Err is nil when nothing was added, else a *ValidationError of every
// violation added, in order.
func (v Violations) Err() error {
	if len(v) == 0 {
		return nil
	}
	return &ValidationError{Violations: v}
}
