package service_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/sqlrows"
	"github.com/orderflow/orderflow/shared/testinfra"
)

func placeRequest(requestID string) *orderv1.PlaceOrderRequest {
	return &orderv1.PlaceOrderRequest{
		RequestId: requestID, UserId: "user-7", ShopId: "shop-3", DeliveryAddress: "7 Gangnam-daero, Seoul",
		Items: []*orderv1.OrderItem{{MenuId: "m-9", Name: "Tteokbokki", Quantity: 3, UnitPrice: 4000}},
	}
}

func TestGRPCOrderLifecycle(t *testing.T) {
	t.Parallel()
	h := start(t, testinfra.Shards(t, 2))
	ctx := context.Background()

	placed, err := h.grpc.PlaceOrder(ctx, placeRequest("grpc-1"))
	if err != nil {
		t.Fatalf("PlaceOrder: %v", err)
	}
	o := placed.GetOrder()
	if o.GetOrderNo() < 1 || o.GetStatus() != orderv1.Order_PLACED || o.GetTotalAmount() != 12000 || o.GetVersion() != 1 {
		t.Fatalf("PlaceOrder returned %v", o)
	}
	adv, err := h.grpc.AdvanceOrder(ctx, &orderv1.AdvanceOrderRequest{OrderNo: o.GetOrderNo(), Status: orderv1.Order_ACCEPTED})
	if err != nil || adv.GetOrder().GetStatus() != orderv1.Order_ACCEPTED || adv.GetOrder().GetVersion() != 2 {
		t.Fatalf("AdvanceOrder: %v, %v", adv, err)
	}
	canc, err := h.grpc.CancelOrder(ctx, &orderv1.CancelOrderRequest{OrderNo: o.GetOrderNo(), Reason: "shop closed"})
	if err != nil || canc.GetOrder().GetStatus() != orderv1.Order_CANCELLED || canc.GetOrder().GetCancelReason() != "shop closed" {
		t.Fatalf("CancelOrder: %v, %v", canc, err)
	}
	got, err := h.grpc.GetOrder(ctx, &orderv1.GetOrderRequest{OrderNo: o.GetOrderNo()})
	if err != nil || got.GetOrder().GetVersion() != 3 || len(got.GetOrder().GetStatusHistory()) != 3 {
		t.Fatalf("GetOrder: %v, %v", got, err)
	}

	tests := []struct {
		name      string
		call      func() error
		wantCode  codes.Code
		wantField string
	}{
		{name: "invalid place", wantCode: codes.InvalidArgument, wantField: "items[0].quantity", call: func() error {
			r := placeRequest("grpc-bad")
			r.Items[0].Quantity = 0
			_, err := h.grpc.PlaceOrder(ctx, r)
			return err
		}},
		{name: "unknown order", wantCode: codes.NotFound, call: func() error {
			_, err := h.grpc.GetOrder(ctx, &orderv1.GetOrderRequest{OrderNo: 987654321})
			return err
		}},
		{name: "negative order number", wantCode: codes.InvalidArgument, wantField: "orderNo", call: func() error {
			_, err := h.grpc.GetOrder(ctx, &orderv1.GetOrderRequest{OrderNo: -3})
			return err
		}},
		// An unknown number is bad input, never some default status; so is
		// no status at all.
		{name: "advance to an unknown status number", wantCode: codes.InvalidArgument, wantField: "status", call: func() error {
			_, err := h.grpc.AdvanceOrder(ctx, &orderv1.AdvanceOrderRequest{OrderNo: o.GetOrderNo(), Status: 99})
			return err
		}},
		{name: "advance without a status", wantCode: codes.InvalidArgument, wantField: "status", call: func() error {
			_, err := h.grpc.AdvanceOrder(ctx, &orderv1.AdvanceOrderRequest{OrderNo: o.GetOrderNo()})
			return err
		}},
		{name: "advance a cancelled order", wantCode: codes.FailedPrecondition, call: func() error {
			_, err := h.grpc.AdvanceOrder(ctx, &orderv1.AdvanceOrderRequest{OrderNo: o.GetOrderNo(), Status: orderv1.Order_DELIVERING})
			return err
		}},
		{name: "request id reused", wantCode: codes.AlreadyExists, call: func() error {
			r := placeRequest("grpc-1")
			r.DeliveryAddress = "somewhere else"
			_, err := h.grpc.PlaceOrder(ctx, r)
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			st := status.Convert(err)
			if st.Code() != tc.wantCode {
				t.Fatalf("code %s (%v), want %s", st.Code(), err, tc.wantCode)
			}
			if tc.wantField == "" {
				return
			}
			for _, d := range st.Details() {
				if br, ok := d.(*errdetails.BadRequest); ok {
					for _, fv := range br.GetFieldViolations() {
						if fv.GetField() == tc.wantField {
							return
						}
					}
				}
			}
			t.Errorf("no BadRequest field violation for %q in %v", tc.wantField, st.Details())
		})
	}
}

func TestPlaceOrderIsExactlyOnceUnderConcurrentRetries(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 2)
	h := start(t, topo)
	const requests, retries = 5, 12
	var wg sync.WaitGroup
	got := make([][]int64, requests)
	errs := make(chan error, requests*retries)
	for r := range requests {
		got[r] = make([]int64, retries)
		for i := range retries {
			wg.Go(func() {
				resp, err := h.grpc.PlaceOrder(context.Background(), placeRequest(fmt.Sprintf("retry-%d", r)))
				if err != nil {
					errs <- err
					return
				}
				got[r][i] = resp.GetOrder().GetOrderNo()
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a concurrent retry failed: %v", err)
	}
	for r := range requests {
		for i := 1; i < retries; i++ {
			if got[r][i] != got[r][0] {
				t.Errorf("request %d: retries returned orders %v, want one order", r, got[r])
				break
			}
		}
	}
	if n := count(t, topo, "SELECT COUNT(*) FROM orders"); n != requests {
		t.Errorf("%d orders stored, want %d", n, requests)
	}
	if n := count(t, topo, "SELECT COUNT(*) FROM outbox"); n != requests {
		t.Errorf("%d outbox rows stored, want %d", n, requests)
	}
}

// Many clients race to change one order. The row lock serialises them:
// versions rise by exactly one, the history is a legal path, and the
// outbox rows follow in the same order.
func TestConcurrentChangesToOneOrderSerialise(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 1)
	h := start(t, topo)
	ctx := context.Background()
	placed, err := h.grpc.PlaceOrder(ctx, placeRequest("race-1"))
	if err != nil {
		t.Fatal(err)
	}
	no := placed.GetOrder().GetOrderNo()
	targets := []orderv1.Order_Status{orderv1.Order_ACCEPTED, orderv1.Order_DELIVERING, orderv1.Order_DELIVERED}
	var wg sync.WaitGroup
	var mu sync.Mutex
	succeeded := map[string]int{}
	for i := range 40 {
		wg.Go(func() {
			var err error
			var what string
			if i%10 == 9 {
				what = "cancel"
				_, err = h.grpc.CancelOrder(ctx, &orderv1.CancelOrderRequest{OrderNo: no, Reason: "race"})
			} else {
				target := targets[rand.IntN(len(targets))]
				what = target.String()
				_, err = h.grpc.AdvanceOrder(ctx, &orderv1.AdvanceOrderRequest{OrderNo: no, Status: target})
			}
			switch status.Code(err) {
			case codes.OK:
				mu.Lock()
				succeeded[what]++
				mu.Unlock()
			case codes.FailedPrecondition:
			default:
				t.Errorf("%s: unexpected error %v", what, err)
			}
		})
	}
	wg.Wait()
	if succeeded["cancel"] != 1 {
		t.Errorf("cancel succeeded %d times, want exactly once: %v", succeeded["cancel"], succeeded)
	}
	for what, n := range succeeded {
		if n > 1 {
			t.Errorf("%s succeeded %d times", what, n)
		}
	}

	got, err := h.grpc.GetOrder(ctx, &orderv1.GetOrderRequest{OrderNo: no})
	if err != nil {
		t.Fatal(err)
	}
	o := got.GetOrder()
	history := o.GetStatusHistory()
	if int(o.GetVersion()) != len(history) || o.GetStatus() != orderv1.Order_CANCELLED {
		t.Fatalf("version %d with %d history entries, status %s", o.GetVersion(), len(history), o.GetStatus())
	}
	for i, c := range history {
		if int(c.GetVersion()) != i+1 {
			t.Errorf("history entry %d has version %d", i, c.GetVersion())
		}
		if i > 0 && c.GetStatus() != orderv1.Order_CANCELLED && c.GetStatus() != history[i-1].GetStatus()+1 {
			t.Errorf("history jumps from %s to %s", history[i-1].GetStatus(), c.GetStatus())
		}
	}
	rows, err := testinfra.DB(t, topo.Shards[0].DSN).Query("SELECT order_version FROM outbox WHERE order_no = ? ORDER BY id", no)
	if err != nil {
		t.Fatal(err)
	}
	versions, err := sqlrows.ScanAll(rows, func(rows *sql.Rows) (int32, error) {
		var v int32
		err := rows.Scan(&v)
		return v, err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := int32(1)
	for _, v := range versions {
		if v != want {
			t.Errorf("outbox row for version %d follows version %d", v, want-1)
		}
		want++
	}
	if int(want-1) != len(history) {
		t.Errorf("%d outbox rows for %d changes", want-1, len(history))
	}
}

// 10,000 orders over two shards: each gets half ± 2 %, every number is
// unique and routes to the shard that stores it.
func TestOrdersSpreadEvenlyOverShards(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 2)
	h := start(t, topo)
	const orders, workers = 10000, 16
	var wg sync.WaitGroup
	jobs := make(chan int)
	errs := make(chan error, orders)
	prefix := testinfra.UniqueName(t, "spread")
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := h.grpc.PlaceOrder(ctx, placeRequest(fmt.Sprintf("%s-%d", prefix, i)))
				cancel()
				if err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range orders {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("placing: %v", err)
	}
	for i, s := range topo.Shards {
		db := testinfra.DB(t, s.DSN)
		var n, misrouted int
		if err := db.QueryRow("SELECT COUNT(*), COALESCE(SUM(order_no % 2 <> ?), 0) FROM orders", i).Scan(&n, &misrouted); err != nil {
			t.Fatal(err)
		}
		share := float64(n) / orders
		t.Logf("%s: %d orders (%.1f %%)", s.Name, n, share*100)
		if share < 0.48 || share > 0.52 {
			t.Errorf("%s holds %.1f %% of the orders, want 50 %% ± 2 %%", s.Name, share*100)
		}
		if misrouted != 0 {
			t.Errorf("%s holds %d orders whose number routes elsewhere", s.Name, misrouted)
		}
	}
	if n := count(t, topo, "SELECT COUNT(DISTINCT order_no) FROM orders"); n != orders {
		t.Errorf("%d distinct order numbers for %d orders", n, orders)
	}
}
