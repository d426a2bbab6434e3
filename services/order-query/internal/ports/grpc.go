// Package ports exposes the query use cases over gRPC (and, through the
// in-process grpc-gateway, REST). It translates between protocol messages
// and documents and maps errors to gRPC status codes, in one place.
package ports

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/orderflow/orderflow/services/order-query/internal/app"
	"github.com/orderflow/orderflow/shared/auth"
	"github.com/orderflow/orderflow/shared/auth/authgrpc"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/orderdoc"
	"github.com/orderflow/orderflow/shared/server"
	"github.com/orderflow/orderflow/shared/validation"
)

// GRPC implements orderv1.OrderQueryServiceServer. Each call's deadline,
// a wait for a minimum version included, is set by the server's chain
// (server.Deadlines), not here.
type GRPC struct {
	orderv1.UnimplementedOrderQueryServiceServer
	app    *app.Service
	logger *slog.Logger
}

// NewGRPC returns the gRPC port.
func NewGRPC(a *app.Service, logger *slog.Logger) *GRPC {
	return &GRPC{app: a, logger: logger}
}

// GetOrder reads one order, waiting for min_version when it is set.
func (g *GRPC) GetOrder(ctx context.Context, req *orderv1.GetOrderViewRequest) (*orderv1.GetOrderViewResponse, error) {
	view, err := g.app.GetOrder(ctx, req.GetOrderNo(), req.GetMinVersion())
	if err != nil {
		return nil, g.toStatus(ctx, err)
	}
	return &orderv1.GetOrderViewResponse{Order: orderdoc.Proto(view.Order), Stale: view.Stale}, nil
}

// ListUserOrders lists a user's orders, newest first.
func (g *GRPC) ListUserOrders(ctx context.Context, req *orderv1.ListUserOrdersRequest) (*orderv1.ListOrdersResponse, error) {
	page, err := g.app.ListUserOrders(ctx, req.GetUserId(), req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, g.toStatus(ctx, err)
	}
	return toListResponse(page), nil
}

// ListShopOrders lists a shop's orders, newest first, optionally of one
// status.
func (g *GRPC) ListShopOrders(ctx context.Context, req *orderv1.ListShopOrdersRequest) (*orderv1.ListOrdersResponse, error) {
	statusName := ""
	if s := req.GetStatus(); s != orderv1.Order_STATUS_UNSPECIFIED {
		// An unknown number becomes its decimal text, which the use case
		// rejects as an unknown status.
		statusName = s.String()
	}
	page, err := g.app.ListShopOrders(ctx, req.GetShopId(), statusName, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, g.toStatus(ctx, err)
	}
	return toListResponse(page), nil
}

// toStatus is the one place use-case and infrastructure errors become gRPC
// status codes.
func (g *GRPC) toStatus(ctx context.Context, err error) error {
	var invalid *validation.Error
	switch {
	case errors.Is(err, auth.ErrPermissionDenied), errors.Is(err, auth.ErrUnauthenticated):
		return authgrpc.GRPCError(ctx, err)
	case errors.As(err, &invalid):
		return server.InvalidArgument(invalid.Error(), invalid.Violations)
	case errors.Is(err, app.ErrNotFound):
		return status.Error(codes.NotFound, "order not found")
	case errors.Is(err, app.ErrTooManyWaiting):
		return tooManyWaiting(ctx)
	case errors.Is(err, app.ErrUnavailable):
		g.logger.WarnContext(ctx, "order store unavailable", slog.Any("error", err))
		return status.Error(codes.Unavailable, "the order store is unavailable; retry later")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "request deadline exceeded")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request cancelled")
	default:
		// The chain's call log writes the cause, once.
		return server.Internal(err)
	}
}

// waitingRetryAfter is the retry hint of a read refused for the waiting
// limit: waits end within MIN_VERSION_WAIT (2 s by default), most of them
// much sooner, so a place is usually free a second later.
const waitingRetryAfter = time.Second

// tooManyWaiting is RESOURCE_EXHAUSTED (HTTP 429) with a google.rpc.RetryInfo
// detail, which the REST gateway turns into a Retry-After header, and a
// retry-after response header for gRPC clients that do not read details.
func tooManyWaiting(ctx context.Context) error {
	secs := int64(waitingRetryAfter / time.Second)
	// Outside a gRPC call (no stream in ctx) there is no header to set; the
	// detail still carries the hint.
	_ = grpc.SetHeader(ctx, metadata.Pairs(strings.ToLower(server.RetryAfterHeader), strconv.FormatInt(secs, 10)))
	st, err := status.New(codes.ResourceExhausted, "too many reads are waiting for a version; retry later or read without minVersion").
		WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(waitingRetryAfter)})
	if err != nil {
		// Only a detail that cannot be marshalled fails here.
		return status.Error(codes.ResourceExhausted, "too many reads are waiting for a version")
	}
	return st.Err()
}

func toListResponse(page *app.Page) *orderv1.ListOrdersResponse {
	orders := make([]*orderv1.Order, len(page.Orders))
	for i := range page.Orders {
		orders[i] = orderdoc.Proto(&page.Orders[i])
	}
	return &orderv1.ListOrdersResponse{Orders: orders, NextPageToken: page.NextPageToken}
}
