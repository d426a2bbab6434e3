package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/observability"
	"github.com/orderflow/orderflow/shared/server"
	"github.com/orderflow/orderflow/shared/testinfra"
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
// method alone. The span carries http.route, and the gRPC server span of
// the in-process call the gateway makes is its child.
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
	inProcess := server.NewInProcess()
	grpcServer, err := server.NewGRPCServer(server.GRPCOptions{InProcess: inProcess, Logger: slog.New(slog.DiscardHandler), Registry: registry, Tracing: tracing,
		Deadlines: server.Deadlines{Default: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	orderv1.RegisterOrderCommandServiceServer(server.Registrar(grpcServer, inProcess), answering{})
	gateway := server.NewGateway()
	if err := orderv1.RegisterOrderCommandServiceHandlerClient(t.Context(), gateway, orderv1.NewOrderCommandServiceClient(inProcess.Conn())); err != nil {
		t.Fatal(err)
	}
	handler := server.NewHTTPHandler(server.HTTPOptions{API: gateway, Registry: registry, Tracing: tracing})
	srv, _ := testinfra.RunService(t, func(context.Context) (*server.Server, error) {
		return server.Listen(slog.New(slog.DiscardHandler), server.Addrs{GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0"},
			grpcServer, handler, server.HTTPConfig{}, 5*time.Second)
	})
	baseURL := "http://" + srv.HTTPAddr()

	cases := []struct {
		name, method, path, body string
		span, route, grpcSpan    string
	}{
		{name: "place", method: "POST", path: "/v1/orders", body: "{}", span: "POST /v1/orders", route: "/v1/orders",
			grpcSpan: "orderflow.order.v1.OrderCommandService/PlaceOrder"},
		{name: "get by number", method: "GET", path: "/v1/orders/42", span: "GET /v1/orders/{order_no}", route: "/v1/orders/{order_no}",
			grpcSpan: "orderflow.order.v1.OrderCommandService/GetOrder"},
		{name: "custom verb", method: "POST", path: "/v1/orders/42:advance", body: `{"status":"ACCEPTED"}`,
			span: "POST /v1/orders/{order_no}:advance", route: "/v1/orders/{order_no}:advance",
			grpcSpan: "orderflow.order.v1.OrderCommandService/AdvanceOrder"},
		// http.route is then otelhttp's own: the catch-all of the outer mux.
		{name: "no route", method: "GET", path: "/v1/nothing/here", span: "GET", route: "/"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			caller := fmt.Sprintf("%016x", 0xcd00+i) // find this request's spans
			req, err := http.NewRequest(c.method, baseURL+c.path, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("traceparent", "00-"+strings.Repeat("ab", 16)+"-"+caller+"-01")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if (c.grpcSpan != "") != (resp.StatusCode == http.StatusOK) {
				t.Fatalf("%s %s: HTTP %d %s", c.method, c.path, resp.StatusCode, body)
			}
			var rest sdktrace.ReadOnlySpan
			// The server ends its span after the response is written.
			testinfra.Eventually(t, 5*time.Second, func() bool {
				for _, s := range recorder.Ended() {
					if s.Name() == c.span && s.Parent().SpanID().String() == caller && routeOf(s) == c.route {
						rest = s
					}
				}
				return rest != nil
			}, "no server span named %q with http.route %q", c.span, c.route)
			if c.grpcSpan == "" {
				return
			}
			testinfra.Eventually(t, 5*time.Second, func() bool {
				for _, s := range recorder.Ended() {
					if s.Name() == c.grpcSpan && s.Parent().SpanID() == rest.SpanContext().SpanID() {
						return true
					}
				}
				return false
			}, "no gRPC span %q under the REST span %s", c.grpcSpan, rest.SpanContext().SpanID())
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
