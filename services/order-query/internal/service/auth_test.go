package service_test

import (
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/orderflow/orderflow/services/order-query/internal/service"
	"github.com/orderflow/orderflow/shared/auth"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// startWithAuth runs the service with authentication on, over keys made
// for the test, and returns a function that signs tokens for it.
func startWithAuth(t *testing.T) (*harness, func(auth.TokenRequest) string) {
	t.Helper()
	dir := t.TempDir()
	if _, err := auth.GenerateKeys(dir, 1); err != nil {
		t.Fatal(err)
	}
	h := start(t, func(c *service.Config) {
		c.Auth = auth.Settings{JWKSFile: filepath.Join(dir, auth.PublicKeysFile), Issuer: auth.LocalIssuer,
			Audience: auth.DefaultAudience, Leeway: 30 * time.Second, PlaceOrderRate: 5, PlaceOrderBurst: 20}
	})
	issuer, err := auth.NewIssuer(auth.IssuerConfig{KeyFile: filepath.Join(dir, auth.SigningKeyFile), Issuer: auth.LocalIssuer, Audience: auth.DefaultAudience})
	if err != nil {
		t.Fatal(err)
	}
	return h, func(r auth.TokenRequest) string {
		r.TTL = time.Hour
		tok, err := issuer.Issue(r)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
}

// getAs sends a GET with token (none when empty) and returns the status
// code and the decoded body.
func (h *harness) getAs(token, path string) (int, map[string]any) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.base+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := h.http.Do(req)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		h.t.Fatalf("GET %s: HTTP %d, not JSON: %s", path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

// A user reads and lists its own orders only, a shop its shop's, an
// operator everything; over REST and gRPC alike. An order that does not
// exist is refused to users and shops exactly as another's is.
func TestAuthReadsOwnOrdersOnly(t *testing.T) {
	t.Parallel()
	h, token := startWithAuth(t)
	h.put(doc(1, "u-1", "s-1", 0), doc(2, "u-2", "s-2", time.Minute))
	u1 := token(auth.TokenRequest{Role: auth.RoleUser, User: "u-1"})
	u2 := token(auth.TokenRequest{Role: auth.RoleUser, User: "u-2"})
	s1 := token(auth.TokenRequest{Role: auth.RoleShop, Shop: "s-1"})
	s2 := token(auth.TokenRequest{Role: auth.RoleShop, Shop: "s-2"})
	op := token(auth.TokenRequest{Role: auth.RoleOperator})

	tests := []struct {
		name     string
		token    string
		path     string
		call     func(context.Context) error
		want     codes.Code
		wantHTTP int
	}{
		{name: "no token", path: "/v1/orders/1", want: codes.Unauthenticated, wantHTTP: http.StatusUnauthorized},
		{name: "user reads its order", token: u1, path: "/v1/orders/1", want: codes.OK, wantHTTP: http.StatusOK},
		{name: "user reads another user's order", token: u2, path: "/v1/orders/1", want: codes.PermissionDenied, wantHTTP: http.StatusForbidden},
		{name: "user reads another user's order with minVersion", token: u2, path: "/v1/orders/1?minVersion=5", want: codes.PermissionDenied, wantHTTP: http.StatusForbidden},
		{name: "user reads an absent order", token: u1, path: "/v1/orders/999", want: codes.PermissionDenied, wantHTTP: http.StatusForbidden},
		{name: "shop reads its order", token: s1, path: "/v1/orders/1", want: codes.OK, wantHTTP: http.StatusOK},
		{name: "shop reads another shop's order", token: s2, path: "/v1/orders/1", want: codes.PermissionDenied, wantHTTP: http.StatusForbidden},
		{name: "operator reads any order", token: op, path: "/v1/orders/2", want: codes.OK, wantHTTP: http.StatusOK},
		{name: "operator reads an absent order", token: op, path: "/v1/orders/999", want: codes.NotFound, wantHTTP: http.StatusNotFound},
		{name: "user lists its orders", token: u1, path: "/v1/users/u-1/orders", want: codes.OK, wantHTTP: http.StatusOK},
		{name: "user lists another user's orders", token: u1, path: "/v1/users/u-2/orders", want: codes.PermissionDenied, wantHTTP: http.StatusForbidden},
		{name: "shop lists a user's orders", token: s1, path: "/v1/users/u-1/orders", want: codes.PermissionDenied, wantHTTP: http.StatusForbidden},
		{name: "shop lists its orders", token: s1, path: "/v1/shops/s-1/orders", want: codes.OK, wantHTTP: http.StatusOK},
		{name: "shop lists another shop's orders", token: s1, path: "/v1/shops/s-2/orders", want: codes.PermissionDenied, wantHTTP: http.StatusForbidden},
		{name: "user lists a shop's orders", token: u1, path: "/v1/shops/s-1/orders", want: codes.PermissionDenied, wantHTTP: http.StatusForbidden},
		{name: "operator lists any user's orders", token: op, path: "/v1/users/u-2/orders", want: codes.OK, wantHTTP: http.StatusOK},
	}
	grpcCall := func(path string) func(context.Context) error {
		switch {
		case strings.HasPrefix(path, "/v1/users/"):
			user := strings.Split(path, "/")[3]
			return func(ctx context.Context) error {
				_, err := h.grpc.ListUserOrders(ctx, &orderv1.ListUserOrdersRequest{UserId: user})
				return err
			}
		case strings.HasPrefix(path, "/v1/shops/"):
			shop := strings.Split(path, "/")[3]
			return func(ctx context.Context) error {
				_, err := h.grpc.ListShopOrders(ctx, &orderv1.ListShopOrdersRequest{ShopId: shop})
				return err
			}
		}
		var no int64
		var minVersion int32
		switch {
		case strings.HasPrefix(path, "/v1/orders/999"):
			no = 999
		case strings.HasPrefix(path, "/v1/orders/2"):
			no = 2
		default:
			no = 1
		}
		if strings.Contains(path, "minVersion") {
			minVersion = 5
		}
		return func(ctx context.Context) error {
			_, err := h.grpc.GetOrder(ctx, &orderv1.GetOrderViewRequest{OrderNo: no, MinVersion: minVersion})
			return err
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			code, body := h.getAs(tc.token, tc.path)
			if code != tc.wantHTTP {
				t.Errorf("REST: HTTP %d %v, want %d", code, body, tc.wantHTTP)
			}
			if tc.want != codes.OK && (body["code"] != float64(tc.want) || body["message"] == nil) {
				t.Errorf("REST: body %v, want a google.rpc.Status with code %d", body, tc.want)
			}
			if tc.want == codes.PermissionDenied && time.Since(start) >= minVersionWait {
				// A refused caller gets no waiting place.
				t.Errorf("REST: the refusal took %s, at least the minVersion wait", time.Since(start))
			}
			ctx := context.Background()
			if tc.token != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tc.token)
			}
			if err := grpcCall(tc.path)(ctx); status.Code(err) != tc.want {
				t.Errorf("gRPC: %v, want %s", err, tc.want)
			}
		})
	}

	// Another's order and an absent one get the same answer.
	_, other := h.getAs(u2, "/v1/orders/1")
	_, absent := h.getAs(u2, "/v1/orders/999")
	if strings.ReplaceAll(toString(other["message"]), " 1:", " N:") != strings.ReplaceAll(toString(absent["message"]), " 999:", " N:") {
		t.Errorf("another's order answers %v, an absent one %v: they must not differ", other, absent)
	}
	// Lists hold only the caller's orders.
	if _, body := h.getAs(u1, "/v1/users/u-1/orders"); len(body["orders"].([]any)) != 1 {
		t.Errorf("u-1's list: %v, want its one order", body)
	}
}

func toString(v any) string {
	s, _ := v.(string)
	return s
}

// Without a JWK Set and without the off switch the service does not start;
// with the switch it starts and warns.
func TestAuthOnByDefault(t *testing.T) {
	t.Parallel()
	db := testinfra.MongoDatabase(t)
	cfg := testConfig(db)
	cfg.Auth.Disabled = false
	if _, err := service.New(t.Context(), cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "ORDERFLOW_AUTH_DISABLED") {
		t.Errorf("New without a JWK Set = %v, want a refusal naming ORDERFLOW_AUTH_DISABLED", err)
	}
	cfg.Auth.Disabled = true
	var logs bytes.Buffer
	svc, err := service.New(t.Context(), cfg, slog.New(slog.NewJSONHandler(&logs, nil)))
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
