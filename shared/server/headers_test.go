package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/server"
)

// refusing answers PlaceOrder with a retryable UNAVAILABLE and CancelOrder
// with an UNAUTHENTICATED whose challenge is also set as response metadata,
// as the services' refusals do for gRPC callers.
type refusing struct {
	orderv1.UnimplementedOrderCommandServiceServer
}

func (refusing) PlaceOrder(ctx context.Context, _ *orderv1.PlaceOrderRequest) (*orderv1.PlaceOrderResponse, error) {
	return nil, server.Unavailable(ctx, "shard unavailable", 2*time.Second)
}

func (refusing) CancelOrder(ctx context.Context, _ *orderv1.CancelOrderRequest) (*orderv1.CancelOrderResponse, error) {
	const challenge = `Bearer realm="test"`
	_ = grpc.SetHeader(ctx, metadata.Pairs("www-authenticate", challenge))
	return nil, status.Error(codes.Unauthenticated, challenge)
}

// A header the status itself yields (Retry-After from RetryInfo, the 401's
// WWW-Authenticate) reaches a REST client once, not once more from the
// response metadata that gRPC clients read it from.
func TestRESTHeadersFromStatusAppearOnce(t *testing.T) {
	t.Parallel()
	e := startEdgeWith(t, refusing{})
	cases := []struct {
		name, path, header, want string
		code                     int
	}{
		{name: "retry after", path: "/v1/orders", header: "Retry-After", want: "2", code: http.StatusServiceUnavailable},
		{name: "challenge", path: "/v1/orders/7:cancel", header: "WWW-Authenticate", want: `Bearer realm="test"`, code: http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(http.MethodPost, e.httpURL+c.path, strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != c.code {
				t.Fatalf("HTTP %d, want %d", resp.StatusCode, c.code)
			}
			if got := resp.Header.Values(c.header); len(got) != 1 || got[0] != c.want {
				t.Errorf("%s = %q, want exactly [%q]", c.header, got, c.want)
			}
		})
	}
}
