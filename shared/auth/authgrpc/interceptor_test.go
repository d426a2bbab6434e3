package authgrpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/orderflow/orderflow/shared/auth"
	"github.com/orderflow/orderflow/shared/auth/authgrpc"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	outboxv1 "github.com/orderflow/orderflow/shared/gen/orderflow/outbox/v1"
	"github.com/orderflow/orderflow/shared/observability"
	"github.com/orderflow/orderflow/shared/server"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// store is the stub services' orders: 1 is u-1's at s-1, 2 is u-2's at
// s-2; placed records the users PlaceOrder was called for.
type store struct {
	mu     sync.Mutex
	orders map[int64]*orderv1.Order
	placed []string
}

func newStore() *store {
	return &store{orders: map[int64]*orderv1.Order{
		1: {OrderNo: 1, UserId: "u-1", ShopId: "s-1", Status: orderv1.Order_PLACED},
		2: {OrderNo: 2, UserId: "u-2", ShopId: "s-2", Status: orderv1.Order_PLACED},
	}}
}

// change loads an order, asks access, and only then applies f: the shape
// of the services' application layer.
func (s *store) change(ctx context.Context, access auth.OrderAccess, orderNo int64, f func(o *orderv1.Order)) (*orderv1.Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[orderNo]
	if !ok {
		return nil, status.Error(codes.NotFound, "no such order")
	}
	if err := access.CheckOrder(ctx, auth.Owner{User: o.GetUserId(), Shop: o.GetShopId()}); err != nil {
		return nil, authgrpc.GRPCError(ctx, err)
	}
	f(o)
	return o, nil
}

func (s *store) snapshot() (map[int64]orderv1.Order_Status, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int64]orderv1.Order_Status{}
	for n, o := range s.orders {
		out[n] = o.GetStatus()
	}
	return out, append([]string(nil), s.placed...)
}

type commandStub struct {
	orderv1.UnimplementedOrderCommandServiceServer
	st     *store
	access auth.OrderAccess
}

func (c commandStub) PlaceOrder(_ context.Context, req *orderv1.PlaceOrderRequest) (*orderv1.PlaceOrderResponse, error) {
	c.st.mu.Lock()
	defer c.st.mu.Unlock()
	c.st.placed = append(c.st.placed, req.GetUserId())
	return &orderv1.PlaceOrderResponse{Order: &orderv1.Order{OrderNo: 10, UserId: req.GetUserId(), ShopId: req.GetShopId()}}, nil
}

func (c commandStub) GetOrder(ctx context.Context, req *orderv1.GetOrderRequest) (*orderv1.GetOrderResponse, error) {
	o, err := c.st.change(ctx, c.access, req.GetOrderNo(), func(*orderv1.Order) {})
	if err != nil {
		return nil, err
	}
	return &orderv1.GetOrderResponse{Order: o}, nil
}

func (c commandStub) CancelOrder(ctx context.Context, req *orderv1.CancelOrderRequest) (*orderv1.CancelOrderResponse, error) {
	o, err := c.st.change(ctx, c.access, req.GetOrderNo(), func(o *orderv1.Order) { o.Status = orderv1.Order_CANCELLED })
	if err != nil {
		return nil, err
	}
	return &orderv1.CancelOrderResponse{Order: o}, nil
}

func (c commandStub) AdvanceOrder(ctx context.Context, req *orderv1.AdvanceOrderRequest) (*orderv1.AdvanceOrderResponse, error) {
	o, err := c.st.change(ctx, c.access, req.GetOrderNo(), func(o *orderv1.Order) { o.Status = req.GetStatus() })
	if err != nil {
		return nil, err
	}
	return &orderv1.AdvanceOrderResponse{Order: o}, nil
}

// queryStub's GetOrder forgets the ownership check for order 2.
type queryStub struct {
	orderv1.UnimplementedOrderQueryServiceServer
	st     *store
	access auth.OrderAccess
}

func (q queryStub) GetOrder(ctx context.Context, req *orderv1.GetOrderViewRequest) (*orderv1.GetOrderViewResponse, error) {
	if req.GetOrderNo() == 2 {
		return &orderv1.GetOrderViewResponse{Order: q.st.orders[2]}, nil
	}
	o, err := q.st.change(ctx, q.access, req.GetOrderNo(), func(*orderv1.Order) {})
	if err != nil {
		return nil, err
	}
	return &orderv1.GetOrderViewResponse{Order: o}, nil
}

func (queryStub) ListUserOrders(context.Context, *orderv1.ListUserOrdersRequest) (*orderv1.ListOrdersResponse, error) {
	return &orderv1.ListOrdersResponse{}, nil
}

func (queryStub) ListShopOrders(context.Context, *orderv1.ListShopOrdersRequest) (*orderv1.ListOrdersResponse, error) {
	return &orderv1.ListOrdersResponse{}, nil
}

type adminStub struct {
	outboxv1.UnimplementedOutboxAdminServiceServer
}

func (adminStub) GetOutboxStats(context.Context, *outboxv1.GetOutboxStatsRequest) (*outboxv1.GetOutboxStatsResponse, error) {
	return &outboxv1.GetOutboxStatsResponse{}, nil
}

// tokens signs the test's tokens: good ones with the key the edge trusts,
// and the bad kinds.
type tokens struct {
	user1, user2, shop1, operator string
	expired, otherKey, otherAud   string
}

func newTokens(t *testing.T) (tokens, string) {
	t.Helper()
	dir, otherDir := t.TempDir(), t.TempDir()
	for _, d := range []string{dir, otherDir} {
		if _, err := auth.GenerateKeys(d, 2); err != nil {
			t.Fatal(err)
		}
	}
	issuer := func(dir, audience string, now time.Time) *auth.Issuer {
		iss, err := auth.NewIssuer(auth.IssuerConfig{KeyFile: filepath.Join(dir, auth.SigningKeyFile), Issuer: testIssuer, Audience: audience,
			Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return iss
	}
	issue := func(iss *auth.Issuer, r auth.TokenRequest) string {
		if r.TTL == 0 {
			r.TTL = time.Hour
		}
		tok, err := iss.Issue(r)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := issuer(dir, testAudience, testNow)
	return tokens{
		user1:    issue(good, auth.TokenRequest{Role: auth.RoleUser, User: "u-1"}),
		user2:    issue(good, auth.TokenRequest{Role: auth.RoleUser, User: "u-2"}),
		shop1:    issue(good, auth.TokenRequest{Role: auth.RoleShop, Shop: "s-1"}),
		operator: issue(good, auth.TokenRequest{Role: auth.RoleOperator}),
		expired:  issue(issuer(dir, testAudience, testNow.Add(-2*time.Hour)), auth.TokenRequest{Role: auth.RoleUser, User: "u-1"}),
		otherKey: issue(issuer(otherDir, testAudience, testNow), auth.TokenRequest{Role: auth.RoleUser, User: "u-1"}),
		otherAud: issue(issuer(dir, "another-api", testNow), auth.TokenRequest{Role: auth.RoleUser, User: "u-1"}),
	}, filepath.Join(dir, auth.PublicKeysFile)
}

// authEdge is a server built like a service's: the chain with the
// interceptor, the stubs on it, the gateway calling it in-process.
type authEdge struct {
	grpcAddr, httpURL string
	st                *store
	registry          *prometheus.Registry
}

func startAuthEdge(t *testing.T, jwksFile string, limiter *auth.Limiter) *authEdge {
	t.Helper()
	e := &authEdge{st: newStore(), registry: observability.NewRegistry()}
	logger := quietLogger()
	tracing, err := observability.NewTracing(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := auth.NewVerifier(t.Context(), auth.VerifierConfig{JWKSFile: jwksFile, Issuer: testIssuer, Audience: testAudience,
		Logger: logger, Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	policy := auth.DefaultPolicy()
	interceptor, err := authgrpc.NewInterceptor(authgrpc.InterceptorConfig{Verifier: verifier, Policy: policy, Limiter: limiter, Registry: e.registry})
	if err != nil {
		t.Fatal(err)
	}
	inProcess := server.NewInProcess()
	grpcServer, err := server.NewGRPCServer(server.GRPCOptions{InProcess: inProcess, Logger: logger, Registry: e.registry, Tracing: tracing,
		Deadlines: server.Deadlines{Default: time.Minute}, Unary: []grpc.UnaryServerInterceptor{interceptor.Unary}})
	if err != nil {
		t.Fatal(err)
	}
	orderv1.RegisterOrderCommandServiceServer(server.Registrar(grpcServer, inProcess), commandStub{st: e.st, access: policy})
	orderv1.RegisterOrderQueryServiceServer(server.Registrar(grpcServer, inProcess), queryStub{st: e.st, access: policy})
	outboxv1.RegisterOutboxAdminServiceServer(server.Registrar(grpcServer, inProcess), adminStub{})
	gateway := server.NewGateway()
	// The query service first: its GET /v1/orders/{orderNo} is shadowed by
	// the command service's, which the REST cases call.
	conn := inProcess.Conn()
	for _, register := range []func(context.Context, *runtime.ServeMux) error{
		func(ctx context.Context, mux *runtime.ServeMux) error {
			return orderv1.RegisterOrderQueryServiceHandlerClient(ctx, mux, orderv1.NewOrderQueryServiceClient(conn))
		},
		func(ctx context.Context, mux *runtime.ServeMux) error {
			return orderv1.RegisterOrderCommandServiceHandlerClient(ctx, mux, orderv1.NewOrderCommandServiceClient(conn))
		},
		func(ctx context.Context, mux *runtime.ServeMux) error {
			return outboxv1.RegisterOutboxAdminServiceHandlerClient(ctx, mux, outboxv1.NewOutboxAdminServiceClient(conn))
		},
	} {
		if err := register(context.Background(), gateway); err != nil {
			t.Fatal(err)
		}
	}
	handler := server.NewHTTPHandler(server.HTTPOptions{API: gateway, Registry: e.registry, MaxBodyBytes: 1 << 16})
	srv, _ := testinfra.RunService(t, func(context.Context) (*server.Server, error) {
		return server.Listen(logger, server.Addrs{GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0"}, grpcServer, handler, server.HTTPConfig{}, 5*time.Second)
	})
	e.grpcAddr, e.httpURL = srv.GRPCAddr(), "http://"+srv.HTTPAddr()
	return e
}

// call is one RPC of the test, by short name, with its arguments.
type call struct {
	rpc     string // place, get, cancel, advance, listUser, listShop, adminStats, queryGet
	orderNo int64
	id      string // the user of place and listUser, the shop of listShop
}

// answer is what a call got: its code, the ErrorInfo reason, and the
// headers (HTTP) or header metadata (gRPC) that tell the client what to do.
type answer struct {
	code            codes.Code
	reason          string
	wwwAuthenticate []string
	retryAfter      []string
	retryDelay      time.Duration
}

func callGRPC(t *testing.T, e *authEdge, authorization string, c call) answer {
	t.Helper()
	conn, err := grpc.NewClient(e.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := t.Context()
	if authorization != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", authorization)
	}
	var md metadata.MD
	cmd, query, admin := orderv1.NewOrderCommandServiceClient(conn), orderv1.NewOrderQueryServiceClient(conn), outboxv1.NewOutboxAdminServiceClient(conn)
	switch c.rpc {
	case "place":
		_, err = cmd.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{RequestId: "r-1", UserId: c.id, ShopId: "s-1"}, grpc.Header(&md))
	case "get":
		_, err = cmd.GetOrder(ctx, &orderv1.GetOrderRequest{OrderNo: c.orderNo}, grpc.Header(&md))
	case "cancel":
		_, err = cmd.CancelOrder(ctx, &orderv1.CancelOrderRequest{OrderNo: c.orderNo, Reason: "changed my mind"}, grpc.Header(&md))
	case "advance":
		_, err = cmd.AdvanceOrder(ctx, &orderv1.AdvanceOrderRequest{OrderNo: c.orderNo, Status: orderv1.Order_ACCEPTED}, grpc.Header(&md))
	case "listUser":
		_, err = query.ListUserOrders(ctx, &orderv1.ListUserOrdersRequest{UserId: c.id}, grpc.Header(&md))
	case "listShop":
		_, err = query.ListShopOrders(ctx, &orderv1.ListShopOrdersRequest{ShopId: c.id}, grpc.Header(&md))
	case "adminStats":
		_, err = admin.GetOutboxStats(ctx, &outboxv1.GetOutboxStatsRequest{}, grpc.Header(&md))
	case "queryGet":
		_, err = query.GetOrder(ctx, &orderv1.GetOrderViewRequest{OrderNo: c.orderNo}, grpc.Header(&md))
	default:
		t.Fatalf("unknown rpc %q", c.rpc)
	}
	st := status.Convert(err)
	a := answer{code: st.Code(), wwwAuthenticate: md.Get("www-authenticate"), retryAfter: md.Get("retry-after")}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			a.reason = d.GetReason()
		case *errdetails.RetryInfo:
			a.retryDelay = d.GetRetryDelay().AsDuration()
		}
	}
	return a
}

func callREST(t *testing.T, e *authEdge, authorization string, c call) answer {
	t.Helper()
	method, path, body := http.MethodGet, "", ""
	switch c.rpc {
	case "place":
		method, path, body = http.MethodPost, "/v1/orders", `{"requestId":"r-1","userId":"`+c.id+`","shopId":"s-1"}`
	case "get":
		path = "/v1/orders/" + itoa(c.orderNo)
	case "cancel":
		method, path, body = http.MethodPost, "/v1/orders/"+itoa(c.orderNo)+":cancel", `{"reason":"changed my mind"}`
	case "advance":
		method, path, body = http.MethodPost, "/v1/orders/"+itoa(c.orderNo)+":advance", `{"status":"ACCEPTED"}`
	case "listUser":
		path = "/v1/users/" + c.id + "/orders"
	case "listShop":
		path = "/v1/shops/" + c.id + "/orders"
	case "adminStats":
		path = "/v1/outbox/stats"
	default:
		t.Fatalf("rpc %q has no REST route here", c.rpc)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.httpURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{code: codes.OK, wwwAuthenticate: resp.Header.Values("WWW-Authenticate"), retryAfter: resp.Header.Values("Retry-After")}
	if resp.StatusCode == http.StatusOK {
		return a
	}
	// The body is a google.rpc.Status, as JSON.
	var st struct {
		Code    codes.Code `json:"code"`
		Message string     `json:"message"`
		Details []struct {
			Type       string `json:"@type"`
			Reason     string `json:"reason"`
			Domain     string `json:"domain"`
			RetryDelay string `json:"retryDelay"`
		} `json:"details"`
	}
	if err := json.Unmarshal(raw, &st); err != nil || st.Message == "" {
		t.Fatalf("HTTP %d body is not a google.rpc.Status (%v): %s", resp.StatusCode, err, raw)
	}
	if want := runtime.HTTPStatusFromCode(st.Code); resp.StatusCode != want {
		t.Errorf("HTTP %d for %s, want %d", resp.StatusCode, st.Code, want)
	}
	a.code = st.Code
	for _, d := range st.Details {
		switch d.Type {
		case "type.googleapis.com/google.rpc.ErrorInfo":
			a.reason = d.Reason
			if d.Domain != authgrpc.ErrorDomain {
				t.Errorf("ErrorInfo domain %q, want %q", d.Domain, authgrpc.ErrorDomain)
			}
		case "type.googleapis.com/google.rpc.RetryInfo":
			a.retryDelay, _ = time.ParseDuration(d.RetryDelay)
		}
	}
	return a
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

var protocols = []struct {
	name string
	call func(t *testing.T, e *authEdge, authorization string, c call) answer
}{{"grpc", callGRPC}, {"rest", callREST}}

// Each refusal of the access issue, over gRPC and over REST: no token, a
// token that is expired, signed by another key or for another audience,
// a user reading, listing or cancelling another user's order, a shop
// advancing another shop's order, a user calling the admin API. Each is
// 401 or 403 with a google.rpc.Status body (and its ErrorInfo reason) and a
// WWW-Authenticate challenge, and changes nothing; the calls the roles do
// allow go through.
func TestInterceptorOverGRPCAndREST(t *testing.T) {
	t.Parallel()
	tok, jwksFile := newTokens(t)
	bearer := func(token string) string { return "Bearer " + token }
	placed := map[int64]orderv1.Order_Status{1: orderv1.Order_PLACED, 2: orderv1.Order_PLACED}
	with := func(n int64, s orderv1.Order_Status) map[int64]orderv1.Order_Status {
		out := map[int64]orderv1.Order_Status{1: orderv1.Order_PLACED, 2: orderv1.Order_PLACED}
		out[n] = s
		return out
	}
	tests := []struct {
		name          string
		authorization string
		call          call
		want          codes.Code
		reason        string
		challenge     string // a part of WWW-Authenticate
		orders        map[int64]orderv1.Order_Status
		placed        []string
	}{
		{name: "no token", call: call{rpc: "get", orderNo: 1}, want: codes.Unauthenticated, reason: authgrpc.ReasonTokenMissing, challenge: `Bearer realm="orderflow"`},
		{name: "expired token", authorization: bearer(tok.expired), call: call{rpc: "get", orderNo: 1}, want: codes.Unauthenticated,
			reason: authgrpc.ReasonTokenExpired, challenge: `error="invalid_token"`},
		{name: "token signed by another key", authorization: bearer(tok.otherKey), call: call{rpc: "cancel", orderNo: 1}, want: codes.Unauthenticated,
			reason: authgrpc.ReasonTokenInvalid, challenge: `error="invalid_token"`},
		{name: "token for another audience", authorization: bearer(tok.otherAud), call: call{rpc: "place", id: "u-1"}, want: codes.Unauthenticated,
			reason: authgrpc.ReasonTokenInvalid, challenge: `error="invalid_token"`},
		{name: "another scheme", authorization: "Basic dTE6cHc=", call: call{rpc: "get", orderNo: 1}, want: codes.Unauthenticated,
			reason: authgrpc.ReasonTokenInvalid, challenge: `error="invalid_token"`},
		{name: "user reads another user's order", authorization: bearer(tok.user1), call: call{rpc: "get", orderNo: 2}, want: codes.PermissionDenied,
			reason: authgrpc.ReasonNotAllowed, challenge: `error="insufficient_scope"`},
		{name: "user lists another user's orders", authorization: bearer(tok.user1), call: call{rpc: "listUser", id: "u-2"}, want: codes.PermissionDenied,
			reason: authgrpc.ReasonNotAllowed, challenge: `error="insufficient_scope"`},
		{name: "user cancels another user's order", authorization: bearer(tok.user1), call: call{rpc: "cancel", orderNo: 2}, want: codes.PermissionDenied,
			reason: authgrpc.ReasonNotAllowed, challenge: `error="insufficient_scope"`},
		{name: "user places another user's order", authorization: bearer(tok.user1), call: call{rpc: "place", id: "u-2"}, want: codes.PermissionDenied,
			reason: authgrpc.ReasonNotAllowed, challenge: `error="insufficient_scope"`},
		{name: "shop advances another shop's order", authorization: bearer(tok.shop1), call: call{rpc: "advance", orderNo: 2}, want: codes.PermissionDenied,
			reason: authgrpc.ReasonNotAllowed, challenge: `error="insufficient_scope"`},
		{name: "user advances its own order", authorization: bearer(tok.user1), call: call{rpc: "advance", orderNo: 1}, want: codes.PermissionDenied,
			reason: authgrpc.ReasonNotAllowed, challenge: `error="insufficient_scope"`},
		{name: "user calls the admin API", authorization: bearer(tok.user1), call: call{rpc: "adminStats"}, want: codes.PermissionDenied,
			reason: authgrpc.ReasonNotAllowed, challenge: `error="insufficient_scope"`},
		{name: "shop calls the admin API", authorization: bearer(tok.shop1), call: call{rpc: "adminStats"}, want: codes.PermissionDenied,
			reason: authgrpc.ReasonNotAllowed, challenge: `error="insufficient_scope"`},

		{name: "user reads its own order", authorization: bearer(tok.user1), call: call{rpc: "get", orderNo: 1}, want: codes.OK},
		{name: "user cancels its own order", authorization: bearer(tok.user1), call: call{rpc: "cancel", orderNo: 1}, want: codes.OK,
			orders: with(1, orderv1.Order_CANCELLED)},
		{name: "user places its own order", authorization: bearer(tok.user1), call: call{rpc: "place", id: "u-1"}, want: codes.OK, placed: []string{"u-1"}},
		{name: "user lists its orders", authorization: bearer(tok.user2), call: call{rpc: "listUser", id: "u-2"}, want: codes.OK},
		{name: "shop lists its orders", authorization: bearer(tok.shop1), call: call{rpc: "listShop", id: "s-1"}, want: codes.OK},
		{name: "shop advances its own order", authorization: bearer(tok.shop1), call: call{rpc: "advance", orderNo: 1}, want: codes.OK,
			orders: with(1, orderv1.Order_ACCEPTED)},
		{name: "operator cancels any order", authorization: bearer(tok.operator), call: call{rpc: "cancel", orderNo: 2}, want: codes.OK,
			orders: with(2, orderv1.Order_CANCELLED)},
		{name: "operator calls the admin API", authorization: bearer(tok.operator), call: call{rpc: "adminStats"}, want: codes.OK},
	}
	for _, p := range protocols {
		for _, tc := range tests {
			t.Run(p.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				e := startAuthEdge(t, jwksFile, nil)
				got := p.call(t, e, tc.authorization, tc.call)
				if got.code != tc.want || got.reason != tc.reason {
					t.Errorf("answer %s (%q), want %s (%q)", got.code, got.reason, tc.want, tc.reason)
				}
				if tc.challenge != "" && (len(got.wwwAuthenticate) != 1 || !strings.Contains(got.wwwAuthenticate[0], tc.challenge)) {
					t.Errorf("WWW-Authenticate %q, want one containing %q", got.wwwAuthenticate, tc.challenge)
				}
				orders, placedFor := e.st.snapshot()
				wantOrders := tc.orders
				if wantOrders == nil {
					wantOrders = placed
				}
				for n, s := range wantOrders {
					if orders[n] != s {
						t.Errorf("order %d is %s, want %s", n, orders[n], s)
					}
				}
				if strings.Join(placedFor, ",") != strings.Join(tc.placed, ",") {
					t.Errorf("orders placed for %v, want %v", placedFor, tc.placed)
				}
				if tc.reason != "" {
					if n := counterValue(t, e.registry, "orderflow_auth_refusals_total", tc.reason); n != 1 {
						t.Errorf("orderflow_auth_refusals_total{reason=%q} = %v, want 1", tc.reason, n)
					}
				}
			})
		}
	}
}

// A service that answers a per-order call without asking OrderAccess gets
// INTERNAL instead of leaking the order; the health service needs no
// token.
func TestInterceptorFailsClosed(t *testing.T) {
	t.Parallel()
	tok, jwksFile := newTokens(t)
	e := startAuthEdge(t, jwksFile, nil)
	if got := callGRPC(t, e, "Bearer "+tok.user1, call{rpc: "queryGet", orderNo: 2}); got.code != codes.Internal {
		t.Errorf("an unchecked per-order answer: %s, want INTERNAL", got.code)
	}
	if got := callGRPC(t, e, "Bearer "+tok.user1, call{rpc: "queryGet", orderNo: 1}); got.code != codes.OK {
		t.Errorf("a checked one: %s, want OK", got.code)
	}
	conn, err := grpc.NewClient(e.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health check without a token: %v", err)
	}
}

// A caller over its PlaceOrder rate gets RESOURCE_EXHAUSTED (429) with a
// RetryInfo and Retry-After; once the bucket refilled it is let through;
// another caller and other methods are not limited by it.
func TestInterceptorRateLimit(t *testing.T) {
	t.Parallel()
	tok, jwksFile := newTokens(t)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			clock := testinfra.NewManualClock(testNow)
			limiter, err := auth.NewLimiter(auth.LimiterConfig{Rate: 0.5, Burst: 2, Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			e := startAuthEdge(t, jwksFile, limiter)
			place := call{rpc: "place", id: "u-1"}
			for i := range 2 {
				if got := p.call(t, e, "Bearer "+tok.user1, place); got.code != codes.OK {
					t.Fatalf("call %d of the burst: %s", i+1, got.code)
				}
			}
			got := p.call(t, e, "Bearer "+tok.user1, place)
			if got.code != codes.ResourceExhausted || got.reason != authgrpc.ReasonRateLimited {
				t.Fatalf("over the limit: %s (%q), want RESOURCE_EXHAUSTED (RATE_LIMITED)", got.code, got.reason)
			}
			if len(got.retryAfter) != 1 || got.retryAfter[0] != "2" || got.retryDelay != 2*time.Second {
				t.Errorf("Retry-After %q, RetryInfo %s; want 2 (seconds) once, 2s", got.retryAfter, got.retryDelay)
			}
			if _, placed := e.st.snapshot(); len(placed) != 2 {
				t.Errorf("%d orders placed, want the 2 allowed", len(placed))
			}
			if got := p.call(t, e, "Bearer "+tok.user1, call{rpc: "get", orderNo: 1}); got.code != codes.OK {
				t.Errorf("GetOrder was limited too: %s", got.code)
			}
			if got := p.call(t, e, "Bearer "+tok.operator, call{rpc: "place", id: "u-1"}); got.code != codes.OK {
				t.Errorf("another caller was limited by u-1's calls: %s", got.code)
			}
			clock.Advance(2 * time.Second)
			if got := p.call(t, e, "Bearer "+tok.user1, place); got.code != codes.OK {
				t.Errorf("after the refill interval: %s, want OK", got.code)
			}
			if n := counterValue(t, e.registry, "orderflow_auth_refusals_total", authgrpc.ReasonRateLimited); n != 1 {
				t.Errorf("orderflow_auth_refusals_total{reason=RATE_LIMITED} = %v, want 1", n)
			}
		})
	}
}

// The stream interceptor: a stream without a token is refused, one with a
// role the method is not open to is refused, an operator's runs with its
// caller in the context.
func TestStreamInterceptor(t *testing.T) {
	t.Parallel()
	tok, jwksFile := newTokens(t)
	verifier, err := auth.NewVerifier(t.Context(), auth.VerifierConfig{JWKSFile: jwksFile, Issuer: testIssuer, Audience: testAudience,
		Logger: quietLogger(), Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	// No public methods: the health service's Watch stream is protected,
	// operators only (it has no rule).
	interceptor, err := authgrpc.NewInterceptor(authgrpc.InterceptorConfig{Verifier: verifier, Policy: auth.DefaultPolicy(), Public: []string{},
		Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	callers := make(chan auth.Caller, 1)
	srv := grpc.NewServer(grpc.StreamInterceptor(interceptor.Stream))
	healthpb.RegisterHealthServer(srv, watchStub{callers: callers})
	lis := listen(t)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	tests := []struct {
		name  string
		token string
		want  codes.Code
	}{
		{name: "no token", want: codes.Unauthenticated},
		{name: "expired token", token: tok.expired, want: codes.Unauthenticated},
		{name: "user", token: tok.user1, want: codes.PermissionDenied},
		{name: "operator", token: tok.operator, want: codes.OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			if tc.token != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tc.token)
			}
			stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
			if err == nil {
				_, err = stream.Recv()
			}
			if got := status.Code(err); got != tc.want {
				t.Fatalf("Watch: %s (%v), want %s", got, err, tc.want)
			}
			if tc.want == codes.OK {
				if c := <-callers; c.Role != auth.RoleOperator {
					t.Errorf("the stream's context has caller %+v, want the operator", c)
				}
			}
		})
	}
}

type watchStub struct {
	healthpb.UnimplementedHealthServer
	callers chan<- auth.Caller
}

func (w watchStub) Watch(_ *healthpb.HealthCheckRequest, stream grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	c, ok := auth.FromContext(stream.Context())
	if !ok {
		return errors.New("no caller in the stream's context")
	}
	w.callers <- c
	return stream.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
}

// counterValue is the value of the counter series of name labelled
// reason.
func counterValue(t *testing.T, registry *prometheus.Registry, name, reason string) float64 {
	t.Helper()
	v, ok := testinfra.MetricValue(t, registry, name, map[string]string{"reason": reason})
	if !ok {
		t.Fatalf("no series %s{reason=%q}", name, reason)
	}
	return v
}
