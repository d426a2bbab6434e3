package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/observability"
	"github.com/orderflow/orderflow/shared/server"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// recorder is a command and query service that counts the calls that reach
// it: a request the edge refuses must not.
type recorder struct {
	orderv1.UnimplementedOrderCommandServiceServer
	calls   atomic.Int64
	block   chan struct{} // CancelOrder waits on it
	entered chan struct{} // CancelOrder signals here once it runs
}

func (r *recorder) PlaceOrder(context.Context, *orderv1.PlaceOrderRequest) (*orderv1.PlaceOrderResponse, error) {
	r.calls.Add(1)
	return &orderv1.PlaceOrderResponse{Order: &orderv1.Order{OrderNo: 1}}, nil
}

func (r *recorder) CancelOrder(ctx context.Context, _ *orderv1.CancelOrderRequest) (*orderv1.CancelOrderResponse, error) {
	r.calls.Add(1)
	r.entered <- struct{}{}
	select {
	case <-r.block:
	case <-ctx.Done():
	}
	return &orderv1.CancelOrderResponse{}, nil
}

// queryRecorder is the recorder's query side (both services have a GetOrder).
type queryRecorder struct {
	orderv1.UnimplementedOrderQueryServiceServer
	*recorder
}

func (r queryRecorder) ListUserOrders(context.Context, *orderv1.ListUserOrdersRequest) (*orderv1.ListOrdersResponse, error) {
	r.calls.Add(1)
	return &orderv1.ListOrdersResponse{}, nil
}

type strictEdge struct {
	grpcAddr, httpURL string
	svc               *recorder
}

// startStrictEdge runs the edge as a service builds it, over the network,
// with the recorder behind both APIs.
func startStrictEdge(t *testing.T, httpCfg server.HTTPConfig, limits server.GRPCConfig) *strictEdge {
	t.Helper()
	e := &strictEdge{svc: &recorder{block: make(chan struct{}), entered: make(chan struct{}, 16)}}
	t.Cleanup(func() { close(e.svc.block) })
	logger := slog.New(slog.DiscardHandler)
	registry := observability.NewRegistry()
	tracing, err := observability.NewTracing(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	inProcess := server.NewInProcess()
	grpcServer, err := server.NewGRPCServer(server.GRPCOptions{InProcess: inProcess, Logger: logger, Registry: registry, Tracing: tracing,
		Deadlines: server.Deadlines{Default: time.Minute}, Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	orderv1.RegisterOrderCommandServiceServer(server.Registrar(grpcServer, inProcess), e.svc)
	orderv1.RegisterOrderQueryServiceServer(server.Registrar(grpcServer, inProcess), queryRecorder{recorder: e.svc})
	gateway := server.NewGateway()
	if err := orderv1.RegisterOrderCommandServiceHandlerClient(context.Background(), gateway, orderv1.NewOrderCommandServiceClient(inProcess.Conn())); err != nil {
		t.Fatal(err)
	}
	if err := orderv1.RegisterOrderQueryServiceHandlerClient(context.Background(), gateway, orderv1.NewOrderQueryServiceClient(inProcess.Conn())); err != nil {
		t.Fatal(err)
	}
	handler := server.NewHTTPHandler(server.HTTPOptions{API: gateway, Registry: registry, MaxBodyBytes: 1 << 16})
	srv, _ := testinfra.RunService(t, func(context.Context) (*server.Server, error) {
		return server.Listen(logger, server.Addrs{GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0"},
			grpcServer, handler, httpCfg, 5*time.Second)
	})
	e.grpcAddr, e.httpURL = srv.GRPCAddr(), "http://"+srv.HTTPAddr()
	return e
}

const goodOrder = `{"requestId":"r-1","userId":"u-1","shopId":"s-1","items":[{"menuId":"m-1","name":"n","quantity":1,"unitPrice":"100"}],"deliveryAddress":"a"}`

// Every kind of bad input the edge itself refuses, over REST: the status,
// the google.rpc.Status body with the field it names, the Allow header of a
// 405, and that the service was never called.
func TestRESTEdgeRefusesWhatIsNotOneJSONValueOfTheRightType(t *testing.T) {
	t.Parallel()
	e := startStrictEdge(t, server.HTTPConfig{}, server.GRPCConfig{})
	tests := []struct {
		name, method, path, contentType, body string
		wantHTTP                              int
		wantCode                              codes.Code
		wantField                             string
		wantAllow                             string
		wantCalls                             int64
	}{
		{name: "one value", method: "POST", path: "/v1/orders", contentType: "application/json", body: goodOrder, wantHTTP: 200, wantCalls: 1},
		{name: "charset utf-8", method: "POST", path: "/v1/orders", contentType: "application/json; charset=UTF-8", body: goodOrder, wantHTTP: 200, wantCalls: 1},
		{name: "trailing data", method: "POST", path: "/v1/orders", contentType: "application/json", body: goodOrder + "garbage", wantHTTP: 400, wantCode: codes.InvalidArgument, wantField: "body"},
		{name: "second JSON value", method: "POST", path: "/v1/orders", contentType: "application/json", body: goodOrder + "\n" + goodOrder, wantHTTP: 400, wantCode: codes.InvalidArgument, wantField: "body"},
		{name: "duplicate key", method: "POST", path: "/v1/orders", contentType: "application/json", body: strings.Replace(goodOrder, `"userId":"u-1"`, `"userId":"u-1","userId":"u-2"`, 1), wantHTTP: 400, wantCode: codes.InvalidArgument, wantField: "userId"},
		{name: "duplicate nested key", method: "POST", path: "/v1/orders", contentType: "application/json", body: strings.Replace(goodOrder, `"menuId":"m-1"`, `"menuId":"m-1","menuId":"m-2"`, 1), wantHTTP: 400, wantCode: codes.InvalidArgument, wantField: "items[0].menuId"},
		{name: "same field by two names", method: "POST", path: "/v1/orders", contentType: "application/json", body: strings.Replace(goodOrder, `"userId":"u-1"`, `"user_id":"u-1","userId":"u-2"`, 1), wantHTTP: 400, wantCode: codes.InvalidArgument, wantField: "userId"},
		{name: "body cut short", method: "POST", path: "/v1/orders", contentType: "application/json", body: `{"requestId":`, wantHTTP: 400, wantCode: codes.InvalidArgument, wantField: "body"},
		{name: "body cut inside an array", method: "POST", path: "/v1/orders", contentType: "application/json", body: `{"items":[{}`, wantHTTP: 400, wantCode: codes.InvalidArgument, wantField: "body"},
		{name: "unknown field", method: "POST", path: "/v1/orders", contentType: "application/json", body: strings.Replace(goodOrder, `"userId"`, `"coupon":"x","userId"`, 1), wantHTTP: 400, wantCode: codes.InvalidArgument, wantField: "coupon"},
		{name: "unknown field in an item", method: "POST", path: "/v1/orders", contentType: "application/json", body: strings.Replace(goodOrder, `"menuId":"m-1"`, `"menuId":"m-1","coupon":"x"`, 1), wantHTTP: 400, wantCode: codes.InvalidArgument, wantField: "items[0].coupon"},
		{name: "wrong type in an item", method: "POST", path: "/v1/orders", contentType: "application/json", body: strings.Replace(goodOrder, `"quantity":1`, `"quantity":"two"`, 1), wantHTTP: 400, wantCode: codes.InvalidArgument, wantField: "items[0].quantity"},
		{name: "number too large for int64", method: "POST", path: "/v1/orders", contentType: "application/json", body: strings.Replace(goodOrder, `"unitPrice":"100"`, `"unitPrice":"9223372036854775808"`, 1), wantHTTP: 400, wantCode: codes.InvalidArgument, wantField: "items[0].unitPrice"},
		{name: "wrong type after a multi-line, multi-byte prefix", method: "POST", path: "/v1/orders", contentType: "application/json", body: strings.NewReplacer(`"quantity":1`, `"quantity":true`, `{"requestId"`, "{\n  \"requestId\"", `"name":"n"`, "\n\t\"name\":\"김치찌개\"").Replace(goodOrder), wantHTTP: 400, wantCode: codes.InvalidArgument, wantField: "items[0].quantity"},
		{name: "string that is not UTF-8", method: "POST", path: "/v1/orders", contentType: "application/json", body: strings.Replace(goodOrder, `"u-1"`, "\"u-\xff\"", 1), wantHTTP: 400, wantCode: codes.InvalidArgument, wantField: "userId"},
		{name: "text/plain", method: "POST", path: "/v1/orders", contentType: "text/plain", body: goodOrder, wantHTTP: 415, wantCode: codes.InvalidArgument, wantField: "Content-Type"},
		{name: "form", method: "POST", path: "/v1/orders", contentType: "application/x-www-form-urlencoded", body: "requestId=r-1&userId=u-1", wantHTTP: 415, wantCode: codes.InvalidArgument, wantField: "Content-Type"},
		{name: "no Content-Type", method: "POST", path: "/v1/orders", body: goodOrder, wantHTTP: 415, wantCode: codes.InvalidArgument, wantField: "Content-Type"},
		{name: "another charset", method: "POST", path: "/v1/orders", contentType: "application/json; charset=latin1", body: goodOrder, wantHTTP: 415, wantCode: codes.InvalidArgument, wantField: "Content-Type"},
		{name: "wrong method on a collection", method: "PUT", path: "/v1/orders", contentType: "application/json", body: goodOrder, wantHTTP: 405, wantCode: codes.Unimplemented, wantAllow: "POST"},
		{name: "wrong method on an order", method: "DELETE", path: "/v1/orders/7", wantHTTP: 405, wantCode: codes.Unimplemented, wantAllow: "GET"},
		{name: "GET of a verb", method: "GET", path: "/v1/orders/7:cancel", wantHTTP: 405, wantCode: codes.Unimplemented, wantAllow: "POST"},
		{name: "unknown custom verb", method: "POST", path: "/v1/orders/7:explode", contentType: "application/json", body: `{}`, wantHTTP: 404, wantCode: codes.NotFound},
		{name: "unknown path", method: "GET", path: "/v2/orders", wantHTTP: 404, wantCode: codes.NotFound},
		{name: "query parameter not a number", method: "GET", path: "/v1/users/u-1/orders?pageSize=ten", wantHTTP: 400, wantCode: codes.InvalidArgument, wantField: "pageSize"},
		{name: "query parameter twice", method: "GET", path: "/v1/users/u-1/orders?pageSize=1&pageSize=2", wantHTTP: 400, wantCode: codes.InvalidArgument, wantField: "pageSize"},
		{name: "good query", method: "GET", path: "/v1/users/u-1/orders?pageSize=2", wantHTTP: 200, wantCalls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Not parallel: the calls counter is the edge's.
			before := e.svc.calls.Load()
			req, err := http.NewRequest(tc.method, e.httpURL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.body == "" {
				req.Body, req.ContentLength = http.NoBody, 0
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantHTTP {
				t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, tc.wantHTTP, raw)
			}
			if got := resp.Header.Get("Allow"); got != tc.wantAllow {
				t.Errorf("Allow %q, want %q", got, tc.wantAllow)
			}
			if calls := e.svc.calls.Load() - before; calls != tc.wantCalls {
				t.Errorf("the service was called %d times, want %d", calls, tc.wantCalls)
			}
			if tc.wantHTTP == 200 {
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			var body struct {
				Code    codes.Code `json:"code"`
				Details []struct {
					FieldViolations []struct{ Field string } `json:"fieldViolations"`
				} `json:"details"`
			}
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("the body is not a google.rpc.Status: %v: %s", err, raw)
			}
			if body.Code != tc.wantCode {
				t.Errorf("code %s, want %s: %s", body.Code, tc.wantCode, raw)
			}
			var fields []string
			for _, d := range body.Details {
				for _, fv := range d.FieldViolations {
					fields = append(fields, fv.Field)
				}
			}
			if tc.wantField != "" && !slices.Equal(fields, []string{tc.wantField}) {
				t.Errorf("field violations %v, want one for %q: %s", fields, tc.wantField, raw)
			}
		})
	}
}

// A client that trickles its body more slowly than the read timeout allows
// is cut off at the read timeout: it gets a 400 naming the body, or a closed
// connection, well before the body would have been sent, and the service is
// never called.
func TestRESTSlowBodyIsCutOffAtTheReadTimeout(t *testing.T) {
	t.Parallel()
	const readTimeout = 400 * time.Millisecond
	e := startStrictEdge(t, server.HTTPConfig{ReadTimeout: readTimeout, ReadHeaderTimeout: readTimeout}, server.GRPCConfig{})
	// The server's read deadline starts when it accepts the connection,
	// which is after the dial starts and may be before it returns.
	start := time.Now()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.httpURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := goodOrder
	fmt.Fprintf(conn, "POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	// One byte every 50 ms: the whole body would take len(body)*50ms (over
	// six seconds); the writer stops at the first write that fails.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < len(body); i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := conn.Write([]byte{body[i]}); err != nil {
				return
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	took := time.Since(start)
	if err == nil {
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), `"body"`) || strings.Contains(string(raw), "127.0.0.1") {
			t.Errorf("HTTP %d %s, want 400 naming the body, without addresses", resp.StatusCode, raw)
		}
	} else if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Fatalf("no answer and no close within 5 s: the read timeout (%s) did not hold", readTimeout)
	}
	if bound := readTimeout + 2*time.Second; took > bound || took < readTimeout {
		t.Errorf("cut off after %s, want between %s and %s", took, readTimeout, bound)
	}
	if n := e.svc.calls.Load(); n != 0 {
		t.Errorf("the service was called %d times with a body never sent", n)
	}
}

// MaxConcurrentStreams is applied: with a limit of one, a second call on
// the same connection does not reach the service while the first runs.
func TestGRPCMaxConcurrentStreamsHolds(t *testing.T) {
	t.Parallel()
	e := startStrictEdge(t, server.HTTPConfig{}, server.GRPCConfig{MaxConcurrentStreams: 1})
	conn, err := grpc.NewClient(e.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := orderv1.NewOrderCommandServiceClient(conn)
	first := make(chan error, 1)
	go func() {
		_, err := client.CancelOrder(context.Background(), &orderv1.CancelOrderRequest{OrderNo: 1, Reason: "r"})
		first <- err
	}()
	select {
	case <-e.svc.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the first call never reached the service")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err = client.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("second call while the first holds the only stream: %v, want it to wait (DEADLINE_EXCEEDED)", err)
	}
	if n := e.svc.calls.Load(); n != 1 {
		t.Errorf("%d calls reached the service, want 1", n)
	}
	e.svc.block <- struct{}{}
	if err := <-first; err != nil {
		t.Errorf("first call: %v", err)
	}
	if _, err := client.PlaceOrder(context.Background(), &orderv1.PlaceOrderRequest{}); err != nil {
		t.Errorf("a call after the first ended: %v", err)
	}
}

// The keepalive enforcement policy is applied: a client that pings more
// often than KeepaliveMinTime allows, or without a call in flight when that
// is not permitted, is sent GOAWAY with ENHANCE_YOUR_CALM; one within the
// policy gets its pings answered (gRPC's own default, five minutes, would
// refuse it too, so this case proves the setting is the one applied).
func TestGRPCKeepalivePolicyIsEnforced(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		limits     server.GRPCConfig
		wantGoAway bool
	}{
		{name: "pings more often than the minimum", limits: server.GRPCConfig{KeepaliveMinTime: time.Minute, KeepalivePermitWithoutStream: true}, wantGoAway: true},
		{name: "pings without a call, not permitted", limits: server.GRPCConfig{KeepaliveMinTime: time.Nanosecond, KeepalivePermitWithoutStream: false}, wantGoAway: true},
		{name: "pings within the policy", limits: server.GRPCConfig{KeepaliveMinTime: time.Nanosecond, KeepalivePermitWithoutStream: true}},
	}
	const pings = 10
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := startStrictEdge(t, server.HTTPConfig{}, tc.limits)
			conn, err := net.Dial("tcp", e.grpcAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
				t.Fatal(err)
			}
			framer := http2.NewFramer(conn, conn)
			if err := framer.WriteSettings(); err != nil {
				t.Fatal(err)
			}
			for i := range pings {
				if err := framer.WritePing(false, [8]byte{byte(i)}); err != nil {
					break // the server may already have closed the connection
				}
			}
			acks := 0
			for acks < pings {
				f, err := framer.ReadFrame()
				if err != nil {
					t.Fatalf("after %d ping answers the connection ended without GOAWAY: %v", acks, err)
				}
				switch f := f.(type) {
				case *http2.GoAwayFrame:
					if !tc.wantGoAway || f.ErrCode != http2.ErrCodeEnhanceYourCalm {
						t.Errorf("GOAWAY %v after %d ping answers, want %s", f.ErrCode, acks, map[bool]string{true: "ENHANCE_YOUR_CALM", false: "every ping answered"}[tc.wantGoAway])
					}
					return
				case *http2.PingFrame:
					if f.IsAck() {
						acks++
					}
				}
			}
			if tc.wantGoAway {
				t.Errorf("all %d pings answered, want GOAWAY", pings)
			}
		})
	}
}

// The settings refuse what would make no sense.
func TestConfigValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		http    server.HTTPConfig
		longest time.Duration
		grpc    server.GRPCConfig
		wantErr string
	}{
		{name: "defaults", longest: 5 * time.Second},
		{name: "negative read timeout", http: server.HTTPConfig{ReadTimeout: -1}, wantErr: "READ_TIMEOUT"},
		{name: "header timeout over read timeout", http: server.HTTPConfig{ReadTimeout: time.Second, ReadHeaderTimeout: 2 * time.Second}, wantErr: "READ_HEADER_TIMEOUT"},
		{name: "tiny header limit", http: server.HTTPConfig{MaxHeaderBytes: 100}, wantErr: "MAX_HEADER_BYTES"},
		{name: "write timeout under the request timeout", http: server.HTTPConfig{WriteTimeout: 5 * time.Second}, longest: 5 * time.Second, wantErr: "WRITE_TIMEOUT"},
		{name: "negative keepalive", grpc: server.GRPCConfig{KeepaliveMinTime: -1}, wantErr: "KEEPALIVE_MIN_TIME"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := errors.Join(tc.http.ValidateFor(tc.longest), tc.grpc.Validate())
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want one naming %q", err, tc.wantErr)
			}
		})
	}
}

// /readyz names each component and its state, never the error's text, which
// carries addresses and DSNs.
func TestReadyzHidesTheCauses(t *testing.T) {
	t.Parallel()
	secret := "orderflow:pw@tcp(10.1.2.3:3307)/orderflow dial unix /run/mysqld.sock"
	handler := server.NewHTTPHandler(server.HTTPOptions{API: http.NotFoundHandler(), Registry: observability.NewRegistry(),
		Ready: func(context.Context) map[string]error {
			return map[string]error{"shard-0": nil, "shard-1": errors.New(secret)}
		}})
	srv, err := server.Listen(slog.New(slog.DiscardHandler), server.Addrs{HTTP: "127.0.0.1:0"}, nil, handler, server.HTTPConfig{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	resp, err := http.Get("http://" + srv.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"shard-0": "ok", "shard-1": "unreachable"}
	if resp.StatusCode != http.StatusServiceUnavailable || body.Status != "not ready" || !maps.Equal(body.Checks, want) {
		t.Errorf("HTTP %d %s, want 503 with checks %v", resp.StatusCode, raw, want)
	}
	for _, leak := range []string{"10.1.2.3", "3307", "tcp(", "pw@", ".sock"} {
		if strings.Contains(string(raw), leak) {
			t.Errorf("/readyz shows %q: %s", leak, raw)
		}
	}
}
