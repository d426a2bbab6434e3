package service_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// answerWithin is what a client routed to a hung shard may wait at most.
const answerWithin = time.Second

// A shard that stops answering (SIGSTOP: its port accepts, nothing replies)
// fails the calls routed to it with UNAVAILABLE and a retry-after hint
// within a second, on gRPC and REST, also when many arrive at once; calls
// to the other shard are unaffected; once the shard answers again, calls to
// it succeed again without a restart.
func TestHungShardFailsFastWithRetryAfter(t *testing.T) {
	t.Parallel()
	topo, private := testinfra.ShardsWithPrivate(t)
	cfg := testConfig()
	cfg.RequestTimeout = 5 * time.Second // the production default: the shard's deadlines must answer first
	cfg.Shard = testinfra.WithHungShardDeadlines(cfg.Shard)
	h := startWith(t, topo, cfg)
	addr := strings.TrimPrefix(h.base, "http://")
	ctx := context.Background()

	before, err := h.grpc.PlaceOrder(ctx, placeRequest(requestIDOn(t, topo, "shard-1", "before")))
	if err != nil {
		t.Fatalf("placing on shard-1 while it answers: %v", err)
	}

	private.Stop()
	t.Cleanup(private.Continue) // a failed test must not leave a frozen server behind its cleanup

	// A burst arriving at once, more calls than the pool has connections:
	// none may wait longer than the deadline, none may get another code.
	const burst = 40
	var wg sync.WaitGroup
	errs := make([]error, burst)
	took := make([]time.Duration, burst)
	for i := range burst {
		wg.Go(func() {
			start := time.Now()
			_, errs[i] = h.grpc.PlaceOrder(ctx, placeRequest(requestIDOn(t, topo, "shard-1", "burst")))
			took[i] = time.Since(start)
		})
	}
	wg.Wait()
	for i := range burst {
		if status.Code(errs[i]) != codes.Unavailable || took[i] >= answerWithin {
			t.Errorf("burst call %d to the hung shard: %v after %s, want UNAVAILABLE within %s", i, errs[i], took[i], answerWithin)
		}
	}

	// The breaker is open now: calls fail at once, each with a hint, and the
	// healthy shard keeps serving in between.
	for i := range 5 {
		var md metadata.MD
		start := time.Now()
		_, err := h.grpc.PlaceOrder(ctx, placeRequest(requestIDOn(t, topo, "shard-1", "hung")), grpc.Header(&md))
		elapsed := time.Since(start)
		if status.Code(err) != codes.Unavailable || elapsed >= answerWithin {
			t.Fatalf("place #%d on the hung shard: %v after %s, want UNAVAILABLE within %s", i, err, elapsed, answerWithin)
		}
		if secs := retryAfterMetadata(md); secs < 1 {
			t.Errorf("place #%d: retry-after metadata %v, want whole seconds >= 1", i, md.Get("retry-after"))
		}
		if d := retryInfo(err); d < time.Second {
			t.Errorf("place #%d: google.rpc.RetryInfo delay %s, want >= 1s", i, d)
		}
		start = time.Now()
		if _, err := h.grpc.PlaceOrder(ctx, placeRequest(requestIDOn(t, topo, "shard-0", "healthy"))); err != nil {
			t.Fatalf("place #%d on the healthy shard while the other hangs: %v", i, err)
		}
		if elapsed := time.Since(start); elapsed >= answerWithin {
			t.Errorf("place #%d on the healthy shard took %s", i, elapsed)
		}
	}
	start := time.Now()
	_, err = h.grpc.GetOrder(ctx, &orderv1.GetOrderRequest{OrderNo: before.GetOrder().GetOrderNo()})
	if status.Code(err) != codes.Unavailable || time.Since(start) >= answerWithin {
		t.Errorf("reading an order of the hung shard: %v after %s, want UNAVAILABLE within %s", err, time.Since(start), answerWithin)
	}

	start = time.Now()
	resp := h.post(t, "/v1/orders", placeBody(requestIDOn(t, topo, "shard-1", "rest-hung")))
	elapsed := time.Since(start)
	retryAfter, convErr := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusServiceUnavailable || convErr != nil || retryAfter < 1 || elapsed >= answerWithin {
		t.Errorf("REST place on the hung shard: HTTP %d, Retry-After %q after %s; want 503 with whole seconds >= 1 within %s",
			resp.StatusCode, resp.Header.Get("Retry-After"), elapsed, answerWithin)
	}

	if v := testinfra.MetricSum(t, addr, `orderflow_shard_up{shard="shard-1"}`); v != 0 {
		t.Errorf("orderflow_shard_up of the hung shard = %v, want 0", v)
	}
	if v := testinfra.MetricSum(t, addr, `orderflow_shard_breaker_state{shard="shard-1"}`); v == 0 {
		t.Errorf("orderflow_shard_breaker_state of the hung shard is 0 (closed), want open or probing")
	}
	if v := testinfra.MetricSum(t, addr, `orderflow_shard_breaker_rejected_total{shard="shard-1"}`); v < 5 {
		t.Errorf("orderflow_shard_breaker_rejected_total of the hung shard = %v, want the calls the open breaker refused", v)
	}
	if v := testinfra.MetricSum(t, addr, `orderflow_shard_breaker_state{shard="shard-0"}`); v != 0 {
		t.Errorf("orderflow_shard_breaker_state of the healthy shard = %v, want 0", v)
	}

	private.Continue()

	testinfra.Eventually(t, 15*time.Second, func() bool {
		_, err := h.grpc.PlaceOrder(ctx, placeRequest(requestIDOn(t, topo, "shard-1", "after")))
		return err == nil
	}, "placing on shard-1 never succeeded again after it answered")
	got, err := h.grpc.GetOrder(ctx, &orderv1.GetOrderRequest{OrderNo: before.GetOrder().GetOrderNo()})
	if err != nil || got.GetOrder().GetStatus() != orderv1.Order_PLACED {
		t.Errorf("the order placed before the hang: %v, %v", got, err)
	}
	if v := testinfra.MetricSum(t, addr, `orderflow_shard_breaker_state{shard="shard-1"}`); v != 0 {
		t.Errorf("orderflow_shard_breaker_state of shard-1 after it answered = %v, want 0 (closed)", v)
	}
	if v := testinfra.MetricSum(t, addr, `orderflow_shard_up{shard="shard-1"}`); v != 1 {
		t.Errorf("orderflow_shard_up of shard-1 after it answered = %v, want 1", v)
	}
}

// post sends a JSON body and returns the response with its body read.
func (h *harness) post(t *testing.T, path, body string) *http.Response {
	t.Helper()
	resp, err := h.http.Post(h.base+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	_ = readAll(t, resp)
	_ = resp.Body.Close()
	return resp
}

func retryAfterMetadata(md metadata.MD) int {
	v := md.Get("retry-after")
	if len(v) != 1 {
		return 0
	}
	n, _ := strconv.Atoi(v[0])
	return n
}

func retryInfo(err error) time.Duration {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}
