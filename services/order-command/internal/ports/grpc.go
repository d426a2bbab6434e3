// Package ports exposes the command use cases over gRPC (and, through the
// in-process grpc-gateway, REST). It translates between protocol messages
// and domain values and maps domain errors to gRPC status codes, in one
// place.
package ports

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orderflow/orderflow/services/order-command/internal/app"
	"github.com/orderflow/orderflow/services/order-command/internal/domain"
	"github.com/orderflow/orderflow/shared/auth"
	"github.com/orderflow/orderflow/shared/auth/authgrpc"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/server"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/validation"
)

// GRPC implements orderv1.OrderCommandServiceServer. Each call's deadline
// is set by the server's chain (server.Deadlines), not here.
type GRPC struct {
	orderv1.UnimplementedOrderCommandServiceServer
	app    *app.Service
	logger *slog.Logger
}

// NewGRPC returns the gRPC port.
func NewGRPC(a *app.Service, logger *slog.Logger) *GRPC {
	return &GRPC{app: a, logger: logger}
}

// PlaceOrder places an order, exactly once per request id.
func (g *GRPC) PlaceOrder(ctx context.Context, req *orderv1.PlaceOrderRequest) (*orderv1.PlaceOrderResponse, error) {
	items := make([]domain.Item, len(req.GetItems()))
	for i, it := range req.GetItems() {
		items[i] = domain.Item{MenuID: it.GetMenuId(), Name: it.GetName(), Quantity: it.GetQuantity(), UnitPrice: it.GetUnitPrice()}
	}
	o, err := g.app.PlaceOrder(ctx, domain.PlaceRequest{
		RequestID: req.GetRequestId(), UserID: req.GetUserId(), ShopID: req.GetShopId(),
		Items: items, DeliveryAddress: req.GetDeliveryAddress(),
	})
	if err != nil {
		return nil, g.toStatus(ctx, err)
	}
	return &orderv1.PlaceOrderResponse{Order: ToProto(o)}, nil
}

// AdvanceOrder moves an order one step forward.
func (g *GRPC) AdvanceOrder(ctx context.Context, req *orderv1.AdvanceOrderRequest) (*orderv1.AdvanceOrderResponse, error) {
	o, err := g.app.AdvanceOrder(ctx, req.GetOrderNo(), domain.Status(req.GetStatus()))
	if err != nil {
		return nil, g.toStatus(ctx, err)
	}
	return &orderv1.AdvanceOrderResponse{Order: ToProto(o)}, nil
}

// CancelOrder cancels an order.
func (g *GRPC) CancelOrder(ctx context.Context, req *orderv1.CancelOrderRequest) (*orderv1.CancelOrderResponse, error) {
	o, err := g.app.CancelOrder(ctx, req.GetOrderNo(), req.GetReason())
	if err != nil {
		return nil, g.toStatus(ctx, err)
	}
	return &orderv1.CancelOrderResponse{Order: ToProto(o)}, nil
}

// GetOrder reads an order from its shard.
func (g *GRPC) GetOrder(ctx context.Context, req *orderv1.GetOrderRequest) (*orderv1.GetOrderResponse, error) {
	o, err := g.app.GetOrder(ctx, req.GetOrderNo())
	if err != nil {
		return nil, g.toStatus(ctx, err)
	}
	return &orderv1.GetOrderResponse{Order: ToProto(o)}, nil
}

// toStatus is the one place domain and infrastructure errors become gRPC
// status codes.
func (g *GRPC) toStatus(ctx context.Context, err error) error {
	var invalid *validation.Error
	var rule *domain.RuleError
	var unavailable *shard.UnavailableError
	switch {
	case errors.Is(err, auth.ErrPermissionDenied), errors.Is(err, auth.ErrUnauthenticated):
		return authgrpc.GRPCError(ctx, err)
	case errors.As(err, &invalid):
		return server.InvalidArgument(invalid.Error(), invalid.Violations)
	case errors.As(err, &rule):
		return server.FailedPrecondition(rule.Message, rule.Rule, "order")
	case errors.Is(err, domain.ErrNotFound):
		return status.Error(codes.NotFound, "order not found")
	case errors.Is(err, domain.ErrRequestIDReused):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, shard.ErrEpochExhausted):
		return server.Unavailable(ctx, "a new shard epoch is being taken up; retry with the same requestId", time.Second)
	case errors.As(err, &unavailable):
		// Calls refused by an open breaker are counted in its metrics; the
		// failures that opened it are logged.
		if !unavailable.BreakerOpen {
			g.logger.WarnContext(ctx, "shard unavailable", slog.String("shard", unavailable.Shard), slog.Any("error", err))
		}
		return server.Unavailable(ctx, "shard "+unavailable.Shard+" is unavailable; retry with the same requestId", unavailable.RetryAfter)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "request deadline exceeded")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request cancelled")
	default:
		// The chain's call log writes the cause, once.
		return server.Internal(err)
	}
}

// ToProto converts an order to its protocol message.
func ToProto(o *domain.Order) *orderv1.Order {
	items := make([]*orderv1.OrderItem, len(o.Items))
	for i, it := range o.Items {
		items[i] = &orderv1.OrderItem{MenuId: it.MenuID, Name: it.Name, Quantity: it.Quantity, UnitPrice: it.UnitPrice}
	}
	history := make([]*orderv1.StatusChange, len(o.History))
	for i, c := range o.History {
		history[i] = &orderv1.StatusChange{Status: orderv1.Order_Status(c.Status), Version: c.Version, ChangedAt: timestamppb.New(c.ChangedAt)}
	}
	return &orderv1.Order{
		OrderNo: o.No, Status: orderv1.Order_Status(o.Status), UserId: o.UserID, ShopId: o.ShopID,
		Items: items, TotalAmount: o.TotalAmount, PlacedAt: timestamppb.New(o.PlacedAt), Version: o.Version,
		DeliveryAddress: o.DeliveryAddress, UpdatedAt: timestamppb.New(o.UpdatedAt), CancelReason: o.CancelReason,
		StatusHistory: history,
	}
}
