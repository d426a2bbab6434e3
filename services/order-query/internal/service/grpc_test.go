package service_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/orderflow/orderflow/services/order-query/internal/service"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
)

func TestGRPCGetOrder(t *testing.T) {
	t.Parallel()
	h := start(t)
	d := advance(advance(doc(77, "user-1", "shop-1", 0), "ACCEPTED"), "CANCELLED")
	d.CancelReason = "shop closed"
	h.put(d)
	ctx := context.Background()

	resp, err := h.grpc.GetOrder(ctx, &orderv1.GetOrderViewRequest{OrderNo: 77})
	if err != nil {
		t.Fatal(err)
	}
	o := resp.GetOrder()
	if o.GetOrderNo() != 77 || o.GetStatus() != orderv1.Order_CANCELLED || o.GetVersion() != 3 || o.GetCancelReason() != "shop closed" ||
		o.GetTotalAmount() != 19500 || !o.GetPlacedAt().AsTime().Equal(base) || len(o.GetItems()) != 2 || resp.GetStale() {
		t.Errorf("GetOrder = %v", resp)
	}
	var history []orderv1.Order_Status
	for _, c := range o.GetStatusHistory() {
		history = append(history, c.GetStatus())
	}
	if want := []orderv1.Order_Status{orderv1.Order_PLACED, orderv1.Order_ACCEPTED, orderv1.Order_CANCELLED}; !slices.Equal(history, want) {
		t.Errorf("status history %v, want %v", history, want)
	}

	if _, err := h.grpc.GetOrder(ctx, &orderv1.GetOrderViewRequest{OrderNo: 78}); status.Code(err) != codes.NotFound {
		t.Errorf("missing order: %v, want NotFound", err)
	}
	resp, err = h.grpc.GetOrder(ctx, &orderv1.GetOrderViewRequest{OrderNo: 77, MinVersion: 4})
	if err != nil || !resp.GetStale() || resp.GetOrder().GetVersion() != 3 {
		t.Errorf("minVersion beyond the document: %v %v, want version 3 and stale", resp, err)
	}
}

func TestGRPCMinVersionWaitEndsBeforeTheCallersDeadline(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *service.Config) {
		c.MinVersionWait, c.RequestTimeout, c.HTTP.WriteTimeout = time.Minute, time.Minute, 2*time.Minute
	})
	h.put(doc(5, "user-1", "shop-1", 0))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := h.grpc.GetOrder(ctx, &orderv1.GetOrderViewRequest{OrderNo: 5, MinVersion: 2})
	if err != nil {
		t.Fatalf("GetOrder: %v, want the stale document within the caller's deadline", err)
	}
	if !resp.GetStale() || resp.GetOrder().GetVersion() != 1 {
		t.Errorf("GetOrder = %v, want version 1 and stale", resp)
	}
}

func TestGRPCLists(t *testing.T) {
	t.Parallel()
	h := start(t)
	want := userOrders(h, "user-1", 9)
	ctx := context.Background()

	var got []string
	token := ""
	for {
		resp, err := h.grpc.ListUserOrders(ctx, &orderv1.ListUserOrdersRequest{UserId: "user-1", PageSize: 4, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range resp.GetOrders() {
			got = append(got, itoa(o.GetOrderNo()))
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListUserOrders pages: %v, want %v", got, want)
	}

	accepted := advance(doc(9001, "user-2", "shop-9", time.Minute), "ACCEPTED")
	h.put(doc(9000, "user-2", "shop-9", 0), accepted, doc(9002, "user-2", "shop-9", 2*time.Minute))
	resp, err := h.grpc.ListShopOrders(ctx, &orderv1.ListShopOrdersRequest{ShopId: "shop-9", Status: orderv1.Order_ACCEPTED})
	if err != nil || len(resp.GetOrders()) != 1 || resp.GetOrders()[0].GetOrderNo() != 9001 || resp.GetNextPageToken() != "" {
		t.Errorf("ListShopOrders ACCEPTED: %v %v, want order 9001 alone", resp, err)
	}
	resp, err = h.grpc.ListShopOrders(ctx, &orderv1.ListShopOrdersRequest{ShopId: "shop-9"})
	if err != nil || len(resp.GetOrders()) != 3 || resp.GetOrders()[0].GetOrderNo() != 9002 {
		t.Errorf("ListShopOrders: %v %v, want 9002, 9001, 9000", resp, err)
	}
}

func TestGRPCRejectsBadInput(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := context.Background()
	tests := []struct {
		name       string
		call       func() error
		wantFields []string
	}{
		{"empty user id", func() error {
			_, err := h.grpc.ListUserOrders(ctx, &orderv1.ListUserOrdersRequest{})
			return err
		}, []string{"userId"}},
		{"empty shop id", func() error {
			_, err := h.grpc.ListShopOrders(ctx, &orderv1.ListShopOrdersRequest{})
			return err
		}, []string{"shopId"}},
		{"unknown status number", func() error {
			_, err := h.grpc.ListShopOrders(ctx, &orderv1.ListShopOrdersRequest{ShopId: "shop-1", Status: 42})
			return err
		}, []string{"status"}},
		{"everything wrong", func() error {
			_, err := h.grpc.ListShopOrders(ctx, &orderv1.ListShopOrdersRequest{Status: 42, PageSize: 101, PageToken: "?"})
			return err
		}, []string{"shopId", "status", "pageSize", "pageToken"}},
		{"order number 0", func() error {
			_, err := h.grpc.GetOrder(ctx, &orderv1.GetOrderViewRequest{})
			return err
		}, []string{"orderNo"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			st := status.Convert(err)
			if st.Code() != codes.InvalidArgument {
				t.Fatalf("%v, want InvalidArgument", err)
			}
			var fields []string
			for _, d := range st.Details() {
				if br, ok := d.(*errdetails.BadRequest); ok {
					for _, v := range br.GetFieldViolations() {
						fields = append(fields, v.GetField())
					}
				}
			}
			if !slices.Equal(fields, tc.wantFields) {
				t.Errorf("field violations %v, want %v", fields, tc.wantFields)
			}
		})
	}
}
