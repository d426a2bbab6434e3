// Package server runs an orderflow process's network edge: a gRPC server and,
// on one HTTP port, the grpc-gateway REST API registered in-process, the
// OpenAPI document, /metrics, /healthz and /readyz; it shuts both down
// gracefully when the context ends.
package server

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
)

// FieldViolation is one bad field of a request: Field is the JSON path in
// lowerCamelCase (for example "items[2].quantity").
type FieldViolation struct {
	Field       string
	Description string
}

// InvalidArgument is an INVALID_ARGUMENT status with one
// google.rpc.BadRequest field violation per bad field.
func InvalidArgument(message string, violations []FieldViolation) error {
	br := &errdetails.BadRequest{}
	for _, v := range violations {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field: v.Field, Description: v.Description,
		})
	}
	return withDetails(codes.InvalidArgument, message, br)
}

// FailedPrecondition is a FAILED_PRECONDITION status with a
// google.rpc.PreconditionFailure naming the rule that was not met.
func FailedPrecondition(message, ruleType, subject string) error {
	pf := &errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{{
		Type: ruleType, Subject: subject, Description: message,
	}}}
	return withDetails(codes.FailedPrecondition, message, pf)
}

func withDetails(code codes.Code, message string, detail protoadapt.MessageV1) error {
	st := status.New(code, message)
	withDetail, err := st.WithDetails(detail)
	if err != nil {
		// Only a detail that cannot be marshalled fails here; the plain
		// status still tells the caller what went wrong.
		return st.Err()
	}
	return withDetail.Err()
}
