package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/observability"
	"github.com/orderflow/orderflow/shared/server"
)

// answering is a command service that answers every call with an empty
// response: the test is about the span around it.
type answering struct {
	orderv1.UnimplementedOrderCommandServiceServer
}

func (answering) PlaceOrder(context.Context, *orderv1.PlaceOrderRequest) (*orderv1.PlaceOrderResponse, error) {
	return &orderv1.PlaceOrderResponse{}, nil
}

func (answering) GetOrder(context.Context, *orderv1.GetOrderRequest) (*orderv1.GetOrderResponse, error) {
	return &orderv1.GetOrderResponse{}, nil
}

func (answering) AdvanceOrder(context.Context, *orderv1.AdvanceOrderRequest) (*orderv1.AdvanceOrderResponse, error) {
	return &orderv1.AdvanceOrderResponse{}, nil
}

// REST server spans are named by the method and the route template the
// gateway matched, never by the raw path; an unmatched request by its
// method alone. The span carries http.route.
func TestRESTSpansAreNamedByRoute(t *testing.T) {
	t.Parallel()
	recorder := tracetest.NewSpanRecorder()
	tracing, err := observability.NewTracing(t.Context(), "test",
		sdktrace.WithSpanProcessor(recorder), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tracing.Shutdown(context.Background()) })
	registry := prometheus.NewRegistry()
	gateway := server.NewGateway(runtime.WithMiddlewares(server.RouteMetrics(registry)))
	if err := orderv1.RegisterOrderCommandServiceHandlerServer(t.Context(), gateway, answering{}); err != nil {
		t.Fatal(err)
	}
	handler := server.NewHTTPHandler(server.HTTPOptions{API: gateway, Registry: registry, Tracing: tracing})

	cases := []struct {
		name, method, path, body string
		span, route              string
	}{
		{name: "place", method: "POST", path: "/v1/orders", body: "{}", span: "POST /v1/orders", route: "/v1/orders"},
		{name: "get by number", method: "GET", path: "/v1/orders/42", span: "GET /v1/orders/{order_no}", route: "/v1/orders/{order_no}"},
		{name: "custom verb", method: "POST", path: "/v1/orders/42:advance", body: `{"status":"ACCEPTED"}`,
			span: "POST /v1/orders/{order_no}:advance", route: "/v1/orders/{order_no}:advance"},
		// http.route is then otelhttp's own: the catch-all of the outer mux.
		{name: "no route", method: "GET", path: "/v1/nothing/here", span: "GET", route: "/"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
			req.Header.Set("traceparent", "00-"+strings.Repeat("ab", 16)+"-"+strings.Repeat("cd", 8)+"-01") // find this request's span
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)
			if (c.span != c.method) != (rec.Code == http.StatusOK) {
				t.Fatalf("%s %s: HTTP %d %s", c.method, c.path, rec.Code, rec.Body)
			}
			var found sdktrace.ReadOnlySpan
			for _, s := range recorder.Ended() {
				if s.Name() == c.span && s.Parent().SpanID().String() == strings.Repeat("cd", 8) && routeOf(s) == c.route {
					found = s
				}
			}
			if found == nil {
				var got []string
				for _, s := range recorder.Ended() {
					got = append(got, s.Name()+" route="+routeOf(s))
				}
				t.Errorf("%s %s: no server span named %q with http.route %q; spans: %v", c.method, c.path, c.span, c.route, got)
			}
		})
	}
}

func routeOf(s sdktrace.ReadOnlySpan) string {
	for _, a := range s.Attributes() {
		if a.Key == attribute.Key("http.route") {
			return a.Value.AsString()
		}
	}
	return ""
}
