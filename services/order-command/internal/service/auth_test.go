package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/orderflow/orderflow/services/order-command/internal/service"
	"github.com/orderflow/orderflow/shared/auth"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// authHarness is an order-command with authentication on, over keys the
// test generated, and an issuer signing tokens by the service's clock.
type authHarness struct {
	*harness
	issuer *auth.Issuer
}

func startWithAuth(t *testing.T, rate float64, burst int) *authHarness {
	t.Helper()
	dir := t.TempDir()
	if _, err := auth.GenerateKeys(dir, 2); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Auth = auth.Settings{JWKSFile: filepath.Join(dir, auth.PublicKeysFile), Issuer: auth.LocalIssuer, Audience: auth.DefaultAudience,
		Leeway: 30 * time.Second, PlaceOrderRate: rate, PlaceOrderBurst: burst}
	h := startWith(t, testinfra.Shards(t, 1), cfg)
	issuer, err := auth.NewIssuer(auth.IssuerConfig{KeyFile: filepath.Join(dir, auth.SigningKeyFile), Issuer: auth.LocalIssuer,
		Audience: auth.DefaultAudience, Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &authHarness{harness: h, issuer: issuer}
}

func (h *authHarness) token(r auth.TokenRequest) string {
	h.t.Helper()
	r.TTL = time.Hour
	tok, err := h.issuer.Issue(r)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// doAs is do with a bearer token ("" sends none); it also returns the
// response headers.
func (h *authHarness) doAs(token, method, path, body string) (int, map[string]any, http.Header) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.base+path, bytes.NewBufferString(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := h.http.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		h.t.Fatalf("%s %s: response is not JSON (%v): %s", method, path, err, raw)
	}
	return resp.StatusCode, out, resp.Header
}

func placeBodyFor(requestID, user, shop string) string {
	return strings.NewReplacer(`"user-1"`, fmt.Sprintf("%q", user), `"shop-1"`, fmt.Sprintf("%q", shop)).Replace(placeBody(requestID))
}

// With authentication on, order-command serves each caller its own orders
// only, over REST and gRPC alike, and a refused call changes nothing: the
// stored order is checked inside its transaction (app layer), the request's
// user by the interceptor.
func TestAuthOwnOrdersOnly(t *testing.T) {
	t.Parallel()
	h := startWithAuth(t, 100, 100)
	u1 := h.token(auth.TokenRequest{Role: auth.RoleUser, User: "u-1"})
	u2 := h.token(auth.TokenRequest{Role: auth.RoleUser, User: "u-2"})
	s1 := h.token(auth.TokenRequest{Role: auth.RoleShop, Shop: "s-1"})
	s2 := h.token(auth.TokenRequest{Role: auth.RoleShop, Shop: "s-2"})

	code, placed, _ := h.doAs(u1, http.MethodPost, "/v1/orders", placeBodyFor("auth-1", "u-1", "s-1"))
	if code != http.StatusOK {
		t.Fatalf("u-1 placing its order: HTTP %d %v", code, placed)
	}
	orderNo := placed["order"].(map[string]any)["orderNo"].(string)
	path := "/v1/orders/" + orderNo

	refusals := []struct {
		name, token, method, path, body string
		want                            int
	}{
		{name: "no token", method: http.MethodGet, path: path, want: http.StatusUnauthorized},
		{name: "placing without a token", method: http.MethodPost, path: "/v1/orders", body: placeBodyFor("auth-2", "u-1", "s-1"), want: http.StatusUnauthorized},
		{name: "user places for another user", token: u2, method: http.MethodPost, path: "/v1/orders", body: placeBodyFor("auth-3", "u-1", "s-1"), want: http.StatusForbidden},
		{name: "user reads another user's order", token: u2, method: http.MethodGet, path: path, want: http.StatusForbidden},
		{name: "user cancels another user's order", token: u2, method: http.MethodPost, path: path + ":cancel", body: `{"reason":"not mine"}`, want: http.StatusForbidden},
		{name: "shop advances another shop's order", token: s2, method: http.MethodPost, path: path + ":advance", body: `{"status":"ACCEPTED"}`, want: http.StatusForbidden},
		{name: "user advances its own order", token: u1, method: http.MethodPost, path: path + ":advance", body: `{"status":"ACCEPTED"}`, want: http.StatusForbidden},
		{name: "user reads an order that does not exist", token: u2, method: http.MethodGet, path: "/v1/orders/999999999", want: http.StatusForbidden},
		{name: "user cancels an order that does not exist", token: u2, method: http.MethodPost, path: "/v1/orders/999999999:cancel", body: `{"reason":"probe"}`, want: http.StatusForbidden},
		{name: "shop advances an order that does not exist", token: s2, method: http.MethodPost, path: "/v1/orders/999999999:advance", body: `{"status":"ACCEPTED"}`, want: http.StatusForbidden},
	}
	for _, tc := range refusals {
		code, body, _ := h.doAs(tc.token, tc.method, tc.path, tc.body)
		if code != tc.want || body["code"] == nil || body["message"] == nil {
			t.Errorf("%s: HTTP %d %v, want %d with a google.rpc.Status", tc.name, code, body, tc.want)
		}
	}
	// An absent order and another's get the same answer: the order
	// numbers that exist cannot be probed. An operator is told NOT_FOUND.
	_, other, _ := h.doAs(u2, http.MethodGet, path, "")
	_, absent, _ := h.doAs(u2, http.MethodGet, "/v1/orders/999999999", "")
	if other["message"] == nil || strings.ReplaceAll(other["message"].(string), orderNo, "N") != strings.ReplaceAll(fmt.Sprint(absent["message"]), "999999999", "N") {
		t.Errorf("another's order answers %v, an absent one %v: they must not differ", other, absent)
	}
	op := h.token(auth.TokenRequest{Role: auth.RoleOperator})
	if code, body, _ := h.doAs(op, http.MethodGet, "/v1/orders/999999999", ""); code != http.StatusNotFound {
		t.Errorf("operator reading an absent order: HTTP %d %v, want 404", code, body)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+u2)
	no, _ := json.Number(orderNo).Int64()
	if _, err := h.grpc.GetOrder(ctx, &orderv1.GetOrderRequest{OrderNo: no}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("gRPC: u-2 reading u-1's order: %v, want PERMISSION_DENIED", err)
	}
	if _, err := h.grpc.CancelOrder(ctx, &orderv1.CancelOrderRequest{OrderNo: no, Reason: "not mine"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("gRPC: u-2 cancelling u-1's order: %v, want PERMISSION_DENIED", err)
	}
	if _, err := h.grpc.GetOrder(context.Background(), &orderv1.GetOrderRequest{OrderNo: no}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("gRPC without a token: %v, want UNAUTHENTICATED", err)
	}

	// Nothing changed: one order, still PLACED at version 1, and one outbox
	// row (its OrderPlaced).
	code, got, _ := h.doAs(u1, http.MethodGet, path, "")
	order, _ := got["order"].(map[string]any)
	if code != http.StatusOK || order["status"] != "PLACED" || order["version"] != float64(1) {
		t.Fatalf("after the refusals u-1 reads HTTP %d %v, want its order PLACED at version 1", code, got)
	}
	if n := count(t, h.topo, "SELECT COUNT(*) FROM orders"); n != 1 {
		t.Errorf("%d orders stored, want 1", n)
	}
	if n := count(t, h.topo, "SELECT COUNT(*) FROM outbox"); n != 1 {
		t.Errorf("%d outbox rows, want 1 (refused calls write none)", n)
	}

	if code, body, _ := h.doAs(s1, http.MethodPost, path+":advance", `{"status":"ACCEPTED"}`); code != http.StatusOK {
		t.Errorf("s-1 advancing its own order: HTTP %d %v", code, body)
	}
	if code, body, _ := h.doAs(u1, http.MethodPost, path+":cancel", `{"reason":"changed my mind"}`); code != http.StatusOK {
		t.Errorf("u-1 cancelling its own order: HTTP %d %v", code, body)
	}
}

// PlaceOrder is limited per caller: over its burst a caller gets 429 with
// Retry-After, another caller does not, and once the bucket refilled (the
// service's clock moved on) the caller is let through.
func TestAuthPlaceOrderRateLimit(t *testing.T) {
	t.Parallel()
	h := startWithAuth(t, 1, 2)
	u1 := h.token(auth.TokenRequest{Role: auth.RoleUser, User: "u-1"})
	u2 := h.token(auth.TokenRequest{Role: auth.RoleUser, User: "u-2"})
	for i := range 2 {
		if code, body, _ := h.doAs(u1, http.MethodPost, "/v1/orders", placeBodyFor(fmt.Sprintf("rate-%d", i), "u-1", "s-1")); code != http.StatusOK {
			t.Fatalf("call %d of the burst: HTTP %d %v", i+1, code, body)
		}
	}
	code, body, header := h.doAs(u1, http.MethodPost, "/v1/orders", placeBodyFor("rate-2", "u-1", "s-1"))
	if code != http.StatusTooManyRequests || header.Get("Retry-After") != "1" || body["code"] != float64(codes.ResourceExhausted) {
		t.Fatalf("over the limit: HTTP %d, Retry-After %q, %v; want 429, 1, RESOURCE_EXHAUSTED", code, header.Get("Retry-After"), body)
	}
	if code, body, _ := h.doAs(u2, http.MethodPost, "/v1/orders", placeBodyFor("rate-u2", "u-2", "s-1")); code != http.StatusOK {
		t.Errorf("another caller: HTTP %d %v", code, body)
	}
	h.clock.Advance(time.Second)
	if code, body, _ := h.doAs(u1, http.MethodPost, "/v1/orders", placeBodyFor("rate-2", "u-1", "s-1")); code != http.StatusOK {
		t.Errorf("after the refill: HTTP %d %v", code, body)
	}
	if n := count(t, h.topo, "SELECT COUNT(*) FROM orders"); n != 4 {
		t.Errorf("%d orders stored, want the 4 allowed", n)
	}
}

// Authentication is turned off only explicitly, and the service says so
// at start.
func TestAuthOffIsWarned(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	cfg := testConfig()
	cfg.Auth = auth.Settings{Disabled: true}
	svc, err := service.New(context.Background(), cfg, testinfra.Shards(t, 1), logger, testinfra.NewManualClock(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = svc.Run(ctx)
	if !strings.Contains(logs.String(), `"level":"WARN","msg":"authentication is off`) {
		t.Errorf("no warning that authentication is off:\n%s", logs.String())
	}
}

// Without a JWK Set and without the off switch the service does not start,
// and says which variables fix it.
func TestAuthWithoutKeysRefusesToStart(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Auth = auth.Settings{Issuer: auth.LocalIssuer, Audience: auth.DefaultAudience}
	svc, err := service.New(context.Background(), cfg, testinfra.Shards(t, 1), slog.New(slog.DiscardHandler), testinfra.NewManualClock(time.Now()))
	if err == nil {
		_ = svc.Run(t.Context())
		t.Fatal("order-command started without a JWK Set and without ORDERFLOW_AUTH_DISABLED")
	}
	for _, v := range []string{"ORDERFLOW_AUTH_JWKS_FILE", "ORDERFLOW_AUTH_DISABLED"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("the error %q does not name %s", err, v)
		}
	}
}
