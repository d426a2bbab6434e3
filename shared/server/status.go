// Package server runs an orderflow process's network edge: a gRPC server
// with the one chain of cross-cutting work (tracing, call log, metrics,
// recovery, deadlines, auth) and, on one HTTP port, the grpc-gateway REST API
// calling the same services and chain through an in-process channel, the OpenAPI
// document, /metrics, /healthz and /readyz; it shuts both down gracefully
// when the context ends.
package server

import (
	"context"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/orderflow/orderflow/shared/validation"
)

// InvalidArgument is an INVALID_ARGUMENT status with one
// google.rpc.BadRequest field violation per bad field.
func InvalidArgument(message string, violations []validation.FieldViolation) error {
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

// RetryAfterHeader is the response header (HTTP) and metadata key (gRPC)
// that tells a client when to try again, in whole seconds.
const RetryAfterHeader = "Retry-After"

// Unavailable is an UNAVAILABLE status that tells the client to retry after
// retryAfter: a google.rpc.RetryInfo detail, which the REST gateway turns
// into a Retry-After header (see NewGateway), and a retry-after response
// header for gRPC clients that do not read details.
func Unavailable(ctx context.Context, message string, retryAfter time.Duration) error {
	secs := retryAfterSeconds(retryAfter)
	// Outside a gRPC call (no stream in ctx) there is no header to set; the
	// detail still carries the hint.
	_ = grpc.SetHeader(ctx, metadata.Pairs(strings.ToLower(RetryAfterHeader), strconv.FormatInt(secs, 10)))
	return withDetails(codes.Unavailable, message, &errdetails.RetryInfo{RetryDelay: durationpb.New(time.Duration(secs) * time.Second)})
}

// RetryAfter returns the retry delay an error's status carries in a
// google.rpc.RetryInfo detail.
func RetryAfter(err error) (time.Duration, bool) {
	st, ok := status.FromError(err)
	if !ok {
		return 0, false
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}

// retryAfterSeconds rounds up to whole seconds, at least one: Retry-After
// has no finer unit, and zero would invite an immediate retry.
func retryAfterSeconds(d time.Duration) int64 {
	return max(int64((d+time.Second-1)/time.Second), 1)
}
