package ports

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/orderflow/orderflow/services/order-query/internal/app"
	"github.com/orderflow/orderflow/shared/validation"
)

func TestToStatus(t *testing.T) {
	t.Parallel()
	g := NewGRPC(nil, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	tests := []struct {
		name string
		err  error
		want codes.Code
	}{
		{"validation", &validation.Error{Violations: []validation.FieldViolation{{Field: "pageToken", Description: "bad"}}}, codes.InvalidArgument},
		{"not found", fmt.Errorf("reading: %w", app.ErrNotFound), codes.NotFound},
		{"store unreachable", fmt.Errorf("%w: %w", app.ErrUnavailable, context.DeadlineExceeded), codes.Unavailable},
		{"deadline", fmt.Errorf("reading: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{"cancelled", fmt.Errorf("reading: %w", context.Canceled), codes.Canceled},
		{"anything else", errors.New("boom"), codes.Internal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := status.Convert(g.toStatus(context.Background(), tc.err))
			if st.Code() != tc.want {
				t.Fatalf("code %s, want %s", st.Code(), tc.want)
			}
			if tc.want == codes.Internal && st.Message() != "internal error" {
				t.Errorf("an internal error leaks its text: %q", st.Message())
			}
			if tc.want == codes.InvalidArgument {
				if len(st.Details()) != 1 {
					t.Fatalf("details %v, want one BadRequest", st.Details())
				}
				br, ok := st.Details()[0].(*errdetails.BadRequest)
				if !ok || br.GetFieldViolations()[0].GetField() != "pageToken" {
					t.Errorf("details %v, want a violation of pageToken", st.Details())
				}
			}
		})
	}
}
