package auth_test

import (
	"context"
	"errors"
	"testing"

	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	outboxv1 "github.com/orderflow/orderflow/shared/gen/orderflow/outbox/v1"

	"github.com/orderflow/orderflow/shared/auth"
)

var (
	user1    = auth.Caller{Issuer: testIssuer, Subject: "u-1", Role: auth.RoleUser, User: "u-1"}
	shop1    = auth.Caller{Issuer: testIssuer, Subject: "s-1", Role: auth.RoleShop, Shop: "s-1"}
	operator = auth.Caller{Issuer: testIssuer, Subject: "ops", Role: auth.RoleOperator}
)

// The default policy, method by method and role by role: who may call,
// which request field must name the caller, and which calls the service
// decides with the stored order.
func TestDefaultPolicy(t *testing.T) {
	t.Parallel()
	const (
		allow  = "allow"
		stored = "stored"
		deny   = "deny"
	)
	place := func(user string) *orderv1.PlaceOrderRequest {
		return &orderv1.PlaceOrderRequest{UserId: user, ShopId: "s-1"}
	}
	tests := []struct {
		name   string
		caller auth.Caller
		method string
		req    any
		want   string
	}{
		{name: "user places its own order", caller: user1, method: orderv1.OrderCommandService_PlaceOrder_FullMethodName, req: place("u-1"), want: allow},
		{name: "user places another user's order", caller: user1, method: orderv1.OrderCommandService_PlaceOrder_FullMethodName, req: place("u-2"), want: deny},
		{name: "shop places an order", caller: shop1, method: orderv1.OrderCommandService_PlaceOrder_FullMethodName, req: place("u-1"), want: deny},
		{name: "operator places any order", caller: operator, method: orderv1.OrderCommandService_PlaceOrder_FullMethodName, req: place("u-9"), want: allow},
		{name: "user reads an order (command)", caller: user1, method: orderv1.OrderCommandService_GetOrder_FullMethodName, req: &orderv1.GetOrderRequest{OrderNo: 1}, want: stored},
		{name: "shop reads an order (command)", caller: shop1, method: orderv1.OrderCommandService_GetOrder_FullMethodName, req: &orderv1.GetOrderRequest{OrderNo: 1}, want: stored},
		{name: "user cancels an order", caller: user1, method: orderv1.OrderCommandService_CancelOrder_FullMethodName, req: &orderv1.CancelOrderRequest{OrderNo: 1}, want: stored},
		{name: "shop cancels an order", caller: shop1, method: orderv1.OrderCommandService_CancelOrder_FullMethodName, req: &orderv1.CancelOrderRequest{OrderNo: 1}, want: deny},
		{name: "shop advances an order", caller: shop1, method: orderv1.OrderCommandService_AdvanceOrder_FullMethodName, req: &orderv1.AdvanceOrderRequest{OrderNo: 1}, want: stored},
		{name: "user advances an order", caller: user1, method: orderv1.OrderCommandService_AdvanceOrder_FullMethodName, req: &orderv1.AdvanceOrderRequest{OrderNo: 1}, want: deny},
		{name: "operator advances any order", caller: operator, method: orderv1.OrderCommandService_AdvanceOrder_FullMethodName, req: &orderv1.AdvanceOrderRequest{OrderNo: 1}, want: allow},
		{name: "user reads an order (query)", caller: user1, method: orderv1.OrderQueryService_GetOrder_FullMethodName, req: &orderv1.GetOrderViewRequest{OrderNo: 1}, want: stored},
		{name: "user lists its orders", caller: user1, method: orderv1.OrderQueryService_ListUserOrders_FullMethodName, req: &orderv1.ListUserOrdersRequest{UserId: "u-1"}, want: allow},
		{name: "user lists another user's orders", caller: user1, method: orderv1.OrderQueryService_ListUserOrders_FullMethodName, req: &orderv1.ListUserOrdersRequest{UserId: "u-2"}, want: deny},
		{name: "user lists a shop's orders", caller: user1, method: orderv1.OrderQueryService_ListShopOrders_FullMethodName, req: &orderv1.ListShopOrdersRequest{ShopId: "s-1"}, want: deny},
		{name: "shop lists its orders", caller: shop1, method: orderv1.OrderQueryService_ListShopOrders_FullMethodName, req: &orderv1.ListShopOrdersRequest{ShopId: "s-1"}, want: allow},
		{name: "shop lists another shop's orders", caller: shop1, method: orderv1.OrderQueryService_ListShopOrders_FullMethodName, req: &orderv1.ListShopOrdersRequest{ShopId: "s-2"}, want: deny},
		{name: "shop lists a user's orders", caller: shop1, method: orderv1.OrderQueryService_ListUserOrders_FullMethodName, req: &orderv1.ListUserOrdersRequest{UserId: "u-1"}, want: deny},
		{name: "operator lists any user's orders", caller: operator, method: orderv1.OrderQueryService_ListUserOrders_FullMethodName, req: &orderv1.ListUserOrdersRequest{UserId: "u-7"}, want: allow},
		{name: "user calls the admin API", caller: user1, method: outboxv1.OutboxAdminService_GetOutboxStats_FullMethodName, req: &outboxv1.GetOutboxStatsRequest{}, want: deny},
		{name: "shop replays outbox rows", caller: shop1, method: outboxv1.OutboxAdminService_ReplayOutboxMessages_FullMethodName, req: &outboxv1.ReplayOutboxMessagesRequest{}, want: deny},
		{name: "operator replays outbox rows", caller: operator, method: outboxv1.OutboxAdminService_ReplayOutboxMessages_FullMethodName, req: &outboxv1.ReplayOutboxMessagesRequest{}, want: allow},
		{name: "user calls an unknown method", caller: user1, method: "/orderflow.order.v1.OrderCommandService/DeleteEverything", req: nil, want: deny},
		{name: "user list on a stream (no request)", caller: user1, method: orderv1.OrderQueryService_ListUserOrders_FullMethodName, req: nil, want: deny},
	}
	p := auth.DefaultPolicy()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			isStored, err := p.Authorize(tc.caller, tc.method, tc.req)
			got := allow
			switch {
			case err != nil:
				if !errors.Is(err, auth.ErrPermissionDenied) {
					t.Fatalf("refusal %v does not wrap ErrPermissionDenied", err)
				}
				got = deny
			case isStored:
				got = stored
			}
			if got != tc.want {
				t.Errorf("Authorize(%s, %s) = %s (%v), want %s", tc.caller.Role, tc.method, got, err, tc.want)
			}
		})
	}
}

// Every method of the relay's admin API is left to operators: a new admin
// method is not open to users by omission.
func TestAdminMethodsAreOperatorsOnly(t *testing.T) {
	t.Parallel()
	methods := auth.AdminMethods()
	if len(methods) < 4 {
		t.Fatalf("admin methods %v: the service descriptor was not read", methods)
	}
	for _, m := range methods {
		for _, c := range []auth.Caller{user1, shop1} {
			if _, err := auth.DefaultPolicy().Authorize(c, m, &outboxv1.GetOutboxStatsRequest{}); !errors.Is(err, auth.ErrPermissionDenied) {
				t.Errorf("%s may call %s", c.Role, m)
			}
		}
	}
}

// The check after the order is loaded: its own order only, for a user as
// its user and for a shop as its shop; every order for an operator; a
// context without a caller is refused, Unprotected allows everything.
func TestCheckOrder(t *testing.T) {
	t.Parallel()
	mine := auth.Owner{User: "u-1", Shop: "s-1"}
	tests := []struct {
		name   string
		ctx    context.Context
		access auth.OrderAccess
		owner  auth.Owner
		want   error
	}{
		{name: "user, own order", ctx: auth.WithCaller(context.Background(), user1), access: auth.DefaultPolicy(), owner: mine},
		{name: "user, another user's order at its shop", ctx: auth.WithCaller(context.Background(), user1), access: auth.DefaultPolicy(),
			owner: auth.Owner{User: "u-2", Shop: "s-1"}, want: auth.ErrPermissionDenied},
		{name: "user whose id is a shop's", ctx: auth.WithCaller(context.Background(), auth.Caller{Subject: "s-1", Role: auth.RoleUser, User: "s-1"}),
			access: auth.DefaultPolicy(), owner: mine, want: auth.ErrPermissionDenied},
		{name: "shop, own order", ctx: auth.WithCaller(context.Background(), shop1), access: auth.DefaultPolicy(), owner: mine},
		{name: "shop, another shop's order", ctx: auth.WithCaller(context.Background(), shop1), access: auth.DefaultPolicy(),
			owner: auth.Owner{User: "u-1", Shop: "s-2"}, want: auth.ErrPermissionDenied},
		{name: "operator, any order", ctx: auth.WithCaller(context.Background(), operator), access: auth.DefaultPolicy(), owner: auth.Owner{User: "u-9", Shop: "s-9"}},
		{name: "no caller", ctx: context.Background(), access: auth.DefaultPolicy(), owner: mine, want: auth.ErrUnauthenticated},
		{name: "authentication off", ctx: context.Background(), access: auth.Unprotected{}, owner: mine},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.access.CheckOrder(tc.ctx, tc.owner)
			if (tc.want == nil && err != nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("CheckOrder = %v, want %v", err, tc.want)
			}
		})
	}
}

// A rule naming operators or an unknown role is a mistake in the table.
func TestNewPolicyRefusesBadRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		rules map[string]auth.Rule
	}{
		{name: "operator rule", rules: map[string]auth.Rule{"/x/Y": {auth.RoleOperator: auth.MatchRole}}},
		{name: "unknown role", rules: map[string]auth.Rule{"/x/Y": {"admin": auth.MatchRole}}},
		{name: "unknown match", rules: map[string]auth.Rule{"/x/Y": {auth.RoleUser: auth.Match(42)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := auth.NewPolicy(tc.rules); err == nil {
				t.Error("NewPolicy accepted the rules")
			}
		})
	}
}

// An order that does not exist is refused to a user or a shop exactly as
// another caller's order is, so that existence cannot be probed; an
// operator, and a service without authentication, answer NOT_FOUND.
func TestCheckMissing(t *testing.T) {
	t.Parallel()
	notCallers := auth.DefaultPolicy().CheckOrder(auth.WithCaller(context.Background(), user1), auth.Owner{User: "u-2", Shop: "s-2"})
	tests := []struct {
		name   string
		ctx    context.Context
		access auth.OrderAccess
		want   error
	}{
		{name: "user", ctx: auth.WithCaller(context.Background(), user1), access: auth.DefaultPolicy(), want: auth.ErrPermissionDenied},
		{name: "shop", ctx: auth.WithCaller(context.Background(), shop1), access: auth.DefaultPolicy(), want: auth.ErrPermissionDenied},
		{name: "operator", ctx: auth.WithCaller(context.Background(), operator), access: auth.DefaultPolicy()},
		{name: "no caller", ctx: context.Background(), access: auth.DefaultPolicy(), want: auth.ErrUnauthenticated},
		{name: "authentication off", ctx: context.Background(), access: auth.Unprotected{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, checked := auth.WithOrderCheck(tc.ctx)
			err := tc.access.CheckMissing(ctx)
			if (tc.want == nil && err != nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("CheckMissing = %v, want %v", err, tc.want)
			}
			if tc.want == auth.ErrPermissionDenied && err.Error() != notCallers.Error() {
				t.Errorf("CheckMissing says %q, another caller's order %q: the two must not be told apart", err, notCallers)
			}
			if _, ok := tc.access.(*auth.Policy); ok && !checked() {
				t.Error("CheckMissing did not record that the service asked")
			}
		})
	}
}
