package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
)

// orderAPI places an order and reads it back with minVersion=1.
type orderAPI struct {
	place func(ctx context.Context, requestID string, i int64) (string, error)
	// read reports whether the order was visible before the server's wait ended.
	read func(ctx context.Context, orderNo string) (bool, error)
}

func newAPI(o options) (orderAPI, func(), error) {
	switch o.over {
	case "rest":
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512}}
		return orderAPI{
			place: func(ctx context.Context, id string, i int64) (string, error) {
				return placeOrder(ctx, c, o.command, id, i)
			},
			read: func(ctx context.Context, no string) (bool, error) { return readOrder(ctx, c, o.query, no) },
		}, func() {}, nil
	case "grpc":
		cc, err := grpc.NewClient(o.commandGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return orderAPI{}, nil, err
		}
		qc, err := grpc.NewClient(o.queryGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return orderAPI{}, nil, err
		}
		command, query := orderv1.NewOrderCommandServiceClient(cc), orderv1.NewOrderQueryServiceClient(qc)
		return orderAPI{
			place: func(ctx context.Context, id string, i int64) (string, error) {
				ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				resp, err := command.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{
					RequestId: id, UserId: fmt.Sprintf("user-%d", i%5000), ShopId: fmt.Sprintf("shop-%d", i%300),
					DeliveryAddress: "1 Teheran-ro, Seoul",
					Items:           []*orderv1.OrderItem{{MenuId: "m-1", Name: "Bibimbap", Quantity: 2, UnitPrice: 9000}},
				})
				if err != nil {
					return "", err
				}
				return strconv.FormatInt(resp.GetOrder().GetOrderNo(), 10), nil
			},
			read: func(ctx context.Context, no string) (bool, error) {
				n, _ := strconv.ParseInt(no, 10, 64)
				ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				resp, err := query.GetOrder(ctx, &orderv1.GetOrderViewRequest{OrderNo: n, MinVersion: 1})
				if status.Code(err) == codes.NotFound {
					return false, nil
				}
				if err != nil {
					return false, err
				}
				return !resp.GetStale(), nil
			},
		}, func() { _ = cc.Close(); _ = qc.Close() }, nil
	default:
		return orderAPI{}, nil, fmt.Errorf("-over must be rest or grpc, got %q", o.over)
	}
}
