package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/observability"
	"github.com/orderflow/orderflow/shared/server"
)

// panicking is a command service whose GetOrder panics.
type panicking struct {
	orderv1.UnimplementedOrderCommandServiceServer
}

func (panicking) GetOrder(context.Context, *orderv1.GetOrderRequest) (*orderv1.GetOrderResponse, error) {
	var m map[string]int
	m["boom"]++ // a nil map write: a real runtime panic
	return nil, nil
}

// syncBuffer is a log sink both servers' goroutines may write to.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A handler panic answers INTERNAL, is logged at error level with its stack
// and counted, over gRPC and over REST alike (the REST gateway calls the
// handler in-process, past the gRPC interceptors).
func TestHandlerPanicIsRecovered(t *testing.T) {
	t.Parallel()
	tests := []struct {
		protocol string
		call     func(t *testing.T, grpcAddr, httpURL string) (code codes.Code, message string)
	}{
		{protocol: "grpc", call: func(t *testing.T, grpcAddr, _ string) (codes.Code, string) {
			conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_, err = orderv1.NewOrderCommandServiceClient(conn).GetOrder(context.Background(), &orderv1.GetOrderRequest{OrderNo: 7})
			st, _ := status.FromError(err)
			return st.Code(), st.Message()
		}},
		{protocol: "http", call: func(t *testing.T, _, httpURL string) (codes.Code, string) {
			resp, err := http.Get(httpURL + "/v1/orders/7")
			if err != nil {
				t.Fatalf("the REST call failed instead of answering: %v", err)
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("HTTP %d %q, want 500 application/json", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			var body struct {
				Code    codes.Code `json:"code"`
				Message string     `json:"message"`
				Details []any      `json:"details"`
			}
			if err := json.Unmarshal(raw, &body); err != nil || body.Details == nil {
				t.Fatalf("the body is not a google.rpc.Status (%v): %s", err, raw)
			}
			return body.Code, body.Message
		}},
	}
	for _, tc := range tests {
		t.Run(tc.protocol, func(t *testing.T) {
			t.Parallel()
			var logs syncBuffer
			logger := slog.New(slog.NewJSONHandler(&logs, nil))
			registry := observability.NewRegistry()
			tracing, err := observability.NewTracing(context.Background(), "test")
			if err != nil {
				t.Fatal(err)
			}
			grpcServer := server.NewGRPCServer(server.GRPCOptions{Logger: logger, Registry: registry, Tracing: tracing})
			orderv1.RegisterOrderCommandServiceServer(grpcServer, panicking{})
			gateway := server.NewGateway()
			if err := orderv1.RegisterOrderCommandServiceHandlerServer(context.Background(), gateway, panicking{}); err != nil {
				t.Fatal(err)
			}
			httpServer := httptest.NewServer(server.NewHTTPHandler(server.HTTPOptions{
				API: gateway, Registry: registry, Tracing: tracing, Logger: logger, MaxBodyBytes: 1 << 16,
			}))
			t.Cleanup(httpServer.Close)
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = grpcServer.Serve(lis) }()
			t.Cleanup(grpcServer.Stop)

			code, message := tc.call(t, lis.Addr().String(), httpServer.URL)
			if code != codes.Internal || message != "internal error" {
				t.Errorf("answer %s %q, want INTERNAL \"internal error\"", code, message)
			}

			var entry map[string]any
			for line := range strings.Lines(logs.String()) {
				var e map[string]any
				if json.Unmarshal([]byte(line), &e) == nil && strings.HasPrefix(e["msg"].(string), "panic in ") {
					entry = e
				}
			}
			if entry == nil {
				t.Fatalf("no panic log line; logs:\n%s", logs.String())
			}
			stack, _ := entry["stack"].(string)
			if entry["level"] != "ERROR" || !strings.Contains(stack, "recover_test.go") ||
				!strings.Contains(entry["panic"].(string), "nil map") {
				t.Errorf("log line %v, want level ERROR, the panic and a stack through the handler", entry)
			}

			if got := recovered(t, registry, tc.protocol); got != 1 {
				t.Errorf("orderflow_panics_recovered_total{protocol=%q} = %v, want 1", tc.protocol, got)
			}
		})
	}
}

func recovered(t *testing.T, registry interface {
	Gather() ([]*dto.MetricFamily, error)
}, protocol string) float64 {
	t.Helper()
	families, err := registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "orderflow_panics_recovered_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "protocol" && l.GetValue() == protocol {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
