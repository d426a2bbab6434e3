package ports

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/orderflow/orderflow/services/order-query/internal/app"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/orderdoc"
	"github.com/orderflow/orderflow/shared/server"
)

func TestToStatus(t *testing.T) {
	t.Parallel()
	g := NewGRPC(nil, slog.New(slog.NewJSONHandler(io.Discard, nil)), time.Second)
	tests := []struct {
		name string
		err  error
		want codes.Code
	}{
		{"validation", &server.ValidationError{Violations: []server.FieldViolation{{Field: "pageToken", Description: "bad"}}}, codes.InvalidArgument},
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

func TestToProtoStatusNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want orderv1.Order_Status
	}{
		{"PLACED", orderv1.Order_PLACED},
		{"ACCEPTED", orderv1.Order_ACCEPTED},
		{"DELIVERING", orderv1.Order_DELIVERING},
		{"DELIVERED", orderv1.Order_DELIVERED},
		{"CANCELLED", orderv1.Order_CANCELLED},
		{"SOMETHING_NEW", orderv1.Order_STATUS_UNSPECIFIED},
		{"", orderv1.Order_STATUS_UNSPECIFIED},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := ToProto(&orderdoc.Document{OrderNo: 1, Status: tc.name,
				StatusHistory: []orderdoc.StatusChange{{Status: tc.name, Version: 1}}})
			if o.GetStatus() != tc.want || o.GetStatusHistory()[0].GetStatus() != tc.want {
				t.Errorf("status %s, history %s, want %s", o.GetStatus(), o.GetStatusHistory()[0].GetStatus(), tc.want)
			}
		})
	}
}
