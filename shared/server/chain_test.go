package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/observability"
	"github.com/orderflow/orderflow/shared/server"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// stub is a command service whose GetOrder panics and whose AdvanceOrder
// works until its context ends.
type stub struct {
	orderv1.UnimplementedOrderCommandServiceServer
}

func (stub) GetOrder(context.Context, *orderv1.GetOrderRequest) (*orderv1.GetOrderResponse, error) {
	var m map[string]int
	m["boom"]++ // a nil map write: a real runtime panic
	return nil, nil
}

func (stub) AdvanceOrder(ctx context.Context, _ *orderv1.AdvanceOrderRequest) (*orderv1.AdvanceOrderResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err() // as it is: the chain makes it DEADLINE_EXCEEDED
}

// syncBuffer is a log sink the server's goroutines may write to.
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

// edge is a running server built like a service's: the chain, the stub
// registered on it, and the gateway calling it in-process.
type edge struct {
	grpcAddr, httpURL string
	registry          *prometheus.Registry
	logs              *syncBuffer
}

// advanceBudget is AdvanceOrder's deadline, far below the default budget so
// that the test proves the per-method one applies.
const advanceBudget = 150 * time.Millisecond

func startEdge(t *testing.T) *edge {
	t.Helper()
	return startEdgeWith(t, stub{})
}

// startEdgeWith is startEdge with svc as the command service.
func startEdgeWith(t *testing.T, svc orderv1.OrderCommandServiceServer) *edge {
	t.Helper()
	e := &edge{registry: observability.NewRegistry(), logs: &syncBuffer{}}
	logger := slog.New(slog.NewJSONHandler(e.logs, nil))
	tracing, err := observability.NewTracing(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	inProcess := server.NewInProcess()
	grpcServer, err := server.NewGRPCServer(server.GRPCOptions{InProcess: inProcess, Logger: logger, Registry: e.registry, Tracing: tracing,
		Deadlines: server.Deadlines{Default: time.Minute, PerMethod: map[string]time.Duration{
			orderv1.OrderCommandService_AdvanceOrder_FullMethodName: advanceBudget,
		}}})
	if err != nil {
		t.Fatal(err)
	}
	orderv1.RegisterOrderCommandServiceServer(server.Registrar(grpcServer, inProcess), svc)
	gateway := server.NewGateway()
	if err := orderv1.RegisterOrderCommandServiceHandlerClient(context.Background(), gateway, orderv1.NewOrderCommandServiceClient(inProcess.Conn())); err != nil {
		t.Fatal(err)
	}
	handler := server.NewHTTPHandler(server.HTTPOptions{API: gateway, Registry: e.registry, MaxBodyBytes: 1 << 16})
	srv, _ := testinfra.RunService(t, func(context.Context) (*server.Server, error) {
		return server.Listen(logger, server.Addrs{GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0"},
			grpcServer, handler, server.HTTPConfig{}, 5*time.Second)
	})
	e.grpcAddr, e.httpURL = srv.GRPCAddr(), "http://"+srv.HTTPAddr()
	return e
}

// callGRPC calls method over gRPC and returns the status code.
func callGRPC(t *testing.T, e *edge, method string) codes.Code {
	t.Helper()
	conn, err := grpc.NewClient(e.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := orderv1.NewOrderCommandServiceClient(conn)
	switch method {
	case "GetOrder":
		_, err = client.GetOrder(context.Background(), &orderv1.GetOrderRequest{OrderNo: 7})
	case "AdvanceOrder":
		_, err = client.AdvanceOrder(context.Background(), &orderv1.AdvanceOrderRequest{OrderNo: 7, Status: orderv1.Order_ACCEPTED})
	}
	return status.Code(err)
}

// callREST calls method's route and returns the HTTP status and the code of
// the google.rpc.Status body, which must be JSON.
func callREST(t *testing.T, e *edge, method string) (int, codes.Code) {
	t.Helper()
	var resp *http.Response
	var err error
	switch method {
	case "GetOrder":
		resp, err = http.Get(e.httpURL + "/v1/orders/7")
	case "AdvanceOrder":
		resp, err = http.Post(e.httpURL+"/v1/orders/7:advance", "application/json", strings.NewReader(`{"status":"ACCEPTED"}`))
	}
	if err != nil {
		t.Fatalf("the REST call failed instead of answering: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Code    codes.Code `json:"code"`
		Message string     `json:"message"`
		Details []any      `json:"details"`
	}
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q, want application/json", resp.Header.Get("Content-Type"))
	}
	if err := json.Unmarshal(raw, &body); err != nil || body.Details == nil {
		t.Fatalf("the body is not a google.rpc.Status (%v): %s", err, raw)
	}
	return resp.StatusCode, body.Code
}

// A handler that panics and one that outlives its deadline answer the same
// over gRPC and over REST: the same code (REST: its HTTP status and a
// google.rpc.Status body), one log line with the method and the code, and
// the same metric increments, because REST calls run the gRPC chain.
func TestPanicAndDeadlineBehaveTheSameOverGRPCAndREST(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		protocol string
		method   string
		want     codes.Code
		wantHTTP int
		level    string
		panics   float64
	}{
		{name: "panic over gRPC", protocol: "grpc", method: "GetOrder", want: codes.Internal, level: "ERROR", panics: 1},
		{name: "panic over REST", protocol: "http", method: "GetOrder", want: codes.Internal, wantHTTP: http.StatusInternalServerError, level: "ERROR", panics: 1},
		{name: "deadline over gRPC", protocol: "grpc", method: "AdvanceOrder", want: codes.DeadlineExceeded, level: "WARN"},
		{name: "deadline over REST", protocol: "http", method: "AdvanceOrder", want: codes.DeadlineExceeded, wantHTTP: http.StatusGatewayTimeout, level: "WARN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := startEdge(t)
			start := time.Now()
			var got codes.Code
			if tc.protocol == "grpc" {
				got = callGRPC(t, e, tc.method)
			} else {
				var httpCode int
				httpCode, got = callREST(t, e, tc.method)
				if httpCode != tc.wantHTTP {
					t.Errorf("HTTP %d, want %d", httpCode, tc.wantHTTP)
				}
			}
			if got != tc.want {
				t.Errorf("code %s, want %s", got, tc.want)
			}
			if tc.want == codes.DeadlineExceeded {
				if took := time.Since(start); took > 10*advanceBudget {
					t.Errorf("the call took %s; its budget is %s", took, advanceBudget)
				}
			}

			fullMethod := "/orderflow.order.v1.OrderCommandService/" + tc.method
			// The chain logs before it answers: the line is there.
			lines := failedCalls(e.logs.String())
			if len(lines) != 1 {
				t.Fatalf("%d call log lines, want 1:\n%s", len(lines), e.logs.String())
			}
			line := lines[0]
			if line["level"] != tc.level || line["method"] != fullMethod || line["code"] != tc.want.String() || line["protocol"] != tc.protocol {
				t.Errorf("log line %v, want level %s, method %s, code %s, protocol %s", line, tc.level, fullMethod, tc.want, tc.protocol)
			}
			if tc.panics > 0 {
				stack, _ := line["stack"].(string)
				if p, _ := line["panic"].(string); !strings.Contains(p, "nil map") || !strings.Contains(stack, "chain_test.go") {
					t.Errorf("log line %v, want the panic and a stack through the handler", line)
				}
			}
			if n := warnings(e.logs.String()); n != 1 {
				t.Errorf("%d warning or error lines, want only the call's:\n%s", n, e.logs.String())
			}

			handled := counter(t, e.registry, "grpc_server_handled_total", map[string]string{"grpc_method": tc.method, "grpc_code": tc.want.String()})
			if handled != 1 {
				t.Errorf("grpc_server_handled_total{grpc_method=%q,grpc_code=%q} = %v, want 1", tc.method, tc.want, handled)
			}
			if got := counter(t, e.registry, "orderflow_panics_recovered_total", map[string]string{"protocol": tc.protocol}); got != tc.panics {
				t.Errorf("orderflow_panics_recovered_total{protocol=%q} = %v, want %v", tc.protocol, got, tc.panics)
			}
		})
	}
}

// failedCalls are the "call failed" lines of a JSON log.
func failedCalls(logs string) []map[string]any {
	var out []map[string]any
	for line := range strings.Lines(logs) {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil && e["msg"] == "call failed" {
			out = append(out, e)
		}
	}
	return out
}

// warnings counts the lines of a JSON log at WARN or ERROR.
func warnings(logs string) int {
	n := 0
	for line := range strings.Lines(logs) {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil && (e["level"] == "WARN" || e["level"] == "ERROR") {
			n++
		}
	}
	return n
}

// counter sums the counter series of name whose labels include want.
func counter(t *testing.T, registry *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	v, _ := testinfra.MetricValue(t, registry, name, want)
	return v
}
