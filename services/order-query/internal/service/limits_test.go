package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/orderflow/orderflow/services/order-query/internal/service"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
)

// While MaxWaitingReads reads wait for versions that do not come, one more
// read that would wait is refused at once, over REST and gRPC, with a retry
// hint; reads that need no wait are served; once the waiting reads go away,
// a wait is admitted again.
func TestWaitingReadsLimit(t *testing.T) {
	t.Parallel()
	const limit = 2
	h := start(t, func(c *service.Config) {
		c.MaxWaitingReads = limit
		c.MinVersionWait = time.Minute
		c.RequestTimeout = 2 * time.Minute
		c.HTTP.WriteTimeout = 3 * time.Minute // above the request timeout, which start-up requires
	})
	h.put(doc(21, "user-1", "shop-1", 0))

	// limit+1 reads ask for a version far ahead; exactly one is refused and
	// the others hold their places until released.
	hold, release := context.WithCancel(context.Background())
	defer release()
	ended := make(chan error, limit+1)
	for range limit + 1 {
		go func() {
			_, err := h.grpc.GetOrder(hold, &orderv1.GetOrderViewRequest{OrderNo: 21, MinVersion: 1000})
			ended <- err
		}()
	}
	if err := <-ended; status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("the read beyond the limit: %v, want ResourceExhausted", err)
	}

	tests := []struct {
		name      string
		call      func(t *testing.T) (code int, retryAfter string, hasRetryInfo bool)
		wantCode  int
		wantRetry string
	}{
		{name: "REST wait refused", call: func(t *testing.T) (int, string, bool) {
			return restGet(t, h, "/v1/orders/21?minVersion=5")
		}, wantCode: http.StatusTooManyRequests, wantRetry: "1"},
		{name: "gRPC wait refused", call: func(t *testing.T) (int, string, bool) {
			return grpcGet(t, h, 21, 5)
		}, wantCode: int(codes.ResourceExhausted), wantRetry: "1"},
		{name: "REST read without minVersion served", call: func(t *testing.T) (int, string, bool) {
			return restGet(t, h, "/v1/orders/21")
		}, wantCode: http.StatusOK},
		{name: "gRPC minVersion already reached served", call: func(t *testing.T) (int, string, bool) {
			return grpcGet(t, h, 21, 1)
		}, wantCode: int(codes.OK)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			began := time.Now()
			code, retryAfter, hasRetryInfo := tc.call(t)
			if code != tc.wantCode || retryAfter != tc.wantRetry || hasRetryInfo != (tc.wantRetry != "") {
				t.Errorf("code %d retry-after %q RetryInfo %v, want %d %q %v", code, retryAfter, hasRetryInfo, tc.wantCode, tc.wantRetry, tc.wantRetry != "")
			}
			// A bound, not a performance goal: refused or served, nothing
			// waited for the minute-long MinVersionWait.
			if took := time.Since(began); took > 30*time.Second {
				t.Errorf("answered after %s: the read waited", took)
			}
		})
	}
	select {
	case err := <-ended:
		t.Fatalf("a held read ended while held: %v", err)
	default:
	}

	release()
	for range limit {
		if err := <-ended; status.Code(err) != codes.Canceled {
			t.Errorf("a held read ended with %v, want Canceled", err)
		}
	}
	// The places are free again (the server notices the cancelled calls
	// asynchronously): a wait is admitted and ends stale by its deadline.
	var last error
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		resp, err := h.grpc.GetOrder(ctx, &orderv1.GetOrderViewRequest{OrderNo: 21, MinVersion: 1000})
		cancel()
		if last = err; err == nil {
			if !resp.GetStale() {
				t.Errorf("admitted read answered %v, want stale", resp)
			}
			return
		}
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("after the release: %v", err)
		}
	}
	t.Fatalf("no wait was admitted after the holders went away: %v", last)
}

// restGet returns the HTTP status, the Retry-After header and whether the
// google.rpc.Status body carries a RetryInfo detail.
func restGet(t *testing.T, h *harness, path string) (int, string, bool) {
	t.Helper()
	resp, err := h.http.Get(h.base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Details []struct {
			Type string `json:"@type"`
		} `json:"details"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("GET %s: body is not JSON: %s", path, raw)
	}
	hasRetryInfo := false
	for _, d := range body.Details {
		hasRetryInfo = hasRetryInfo || d.Type == "type.googleapis.com/google.rpc.RetryInfo"
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), hasRetryInfo
}

// grpcGet returns the gRPC code, the retry-after response header and
// whether the status carries a RetryInfo detail.
func grpcGet(t *testing.T, h *harness, orderNo int64, minVersion int32) (int, string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var header metadata.MD
	_, err := h.grpc.GetOrder(ctx, &orderv1.GetOrderViewRequest{OrderNo: orderNo, MinVersion: minVersion}, grpc.Header(&header))
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("GetOrder(%d, minVersion %d) waited for 30s", orderNo, minVersion)
	}
	st := status.Convert(err)
	hasRetryInfo := false
	for _, d := range st.Details() {
		if _, ok := d.(*errdetails.RetryInfo); ok {
			hasRetryInfo = true
		}
	}
	retryAfter := ""
	if v := header.Get("retry-after"); len(v) > 0 {
		retryAfter = v[0]
	}
	return int(st.Code()), retryAfter, hasRetryInfo
}
