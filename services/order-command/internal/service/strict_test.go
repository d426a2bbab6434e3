package service_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/shared/testinfra"
)

// send is do with a Content-Type of the caller's (none when empty), and
// the Allow header of the answer.
func (h *harness) send(method, path, contentType, body string) (int, string, map[string]any) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.base+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if body == "" {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
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
		h.t.Fatalf("%s %s: HTTP %d, the body is not JSON (%v): %s", method, path, resp.StatusCode, err, raw)
	}
	return resp.StatusCode, resp.Header.Get("Allow"), out
}

// What is not exactly one JSON value, not JSON, or not a route of the API
// is refused over REST with a google.rpc.Status naming the field, the
// method or the route, and writes nothing: no order, no outbox row.
func TestRESTRefusesMalformedRequestsAndWritesNothing(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 2)
	h := start(t, topo)
	_, placed := h.do(http.MethodPost, "/v1/orders", placeBody("strict-existing"))
	orderNo, _ := orderField(placed, "orderNo").(string)
	if orderNo == "" {
		t.Fatalf("place: %v", placed)
	}
	body := placeBody("strict-1")
	tests := []struct {
		name, method, path, contentType, body string
		wantHTTP                              int
		wantCode                              float64
		wantField                             string
		wantAllow                             string
	}{
		{name: "trailing data", method: "POST", path: "/v1/orders", contentType: "application/json", body: body + "x", wantHTTP: 400, wantCode: 3, wantField: "body"},
		{name: "second JSON value", method: "POST", path: "/v1/orders", contentType: "application/json", body: body + body, wantHTTP: 400, wantCode: 3, wantField: "body"},
		{name: "duplicate key", method: "POST", path: "/v1/orders", contentType: "application/json",
			body: strings.Replace(body, `"shopId":"shop-1"`, `"shopId":"shop-1","shopId":"shop-2"`, 1), wantHTTP: 400, wantCode: 3, wantField: "shopId"},
		{name: "duplicate key in an item", method: "POST", path: "/v1/orders", contentType: "application/json",
			body: strings.Replace(body, `"quantity":1`, `"quantity":1,"quantity":3`, 1), wantHTTP: 400, wantCode: 3, wantField: "items[1].quantity"},
		{name: "text/plain", method: "POST", path: "/v1/orders", contentType: "text/plain", body: body, wantHTTP: 415, wantCode: 3, wantField: "Content-Type"},
		{name: "form body", method: "POST", path: "/v1/orders", contentType: "application/x-www-form-urlencoded",
			body: "requestId=strict-1&userId=user-1&shopId=shop-1", wantHTTP: 415, wantCode: 3, wantField: "Content-Type"},
		{name: "cancel as a form", method: "POST", path: "/v1/orders/" + orderNo + ":cancel", contentType: "application/x-www-form-urlencoded",
			body: "reason=x", wantHTTP: 415, wantCode: 3, wantField: "Content-Type"},
		{name: "wrong method on the collection", method: "GET", path: "/v1/orders", wantHTTP: 405, wantCode: 12, wantAllow: "POST"},
		{name: "wrong method on an order", method: "DELETE", path: "/v1/orders/" + orderNo, wantHTTP: 405, wantCode: 12, wantAllow: "GET"},
		{name: "wrong method on a verb", method: "GET", path: "/v1/orders/" + orderNo + ":cancel", wantHTTP: 405, wantCode: 12, wantAllow: "POST"},
		{name: "unknown custom verb", method: "POST", path: "/v1/orders/" + orderNo + ":refund", contentType: "application/json", body: `{"reason":"x"}`, wantHTTP: 404, wantCode: 5},
		{name: "path parameter", method: "GET", path: "/v1/orders/12x", wantHTTP: 400, wantCode: 3, wantField: "orderNo"},
	}
	ordersBefore := count(t, topo, "SELECT COUNT(*) FROM orders")
	outboxBefore := count(t, topo, "SELECT COUNT(*) FROM outbox")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, allow, got := h.send(tc.method, tc.path, tc.contentType, tc.body)
			if code != tc.wantHTTP || got["code"] != tc.wantCode {
				t.Fatalf("HTTP %d %v, want %d with code %v", code, got, tc.wantHTTP, tc.wantCode)
			}
			if allow != tc.wantAllow {
				t.Errorf("Allow %q, want %q", allow, tc.wantAllow)
			}
			if fields := violations(got); tc.wantField != "" && !slices.Equal(fields, []string{tc.wantField}) {
				t.Errorf("field violations %v, want one for %q (%v)", fields, tc.wantField, got)
			}
		})
	}
	if n := count(t, topo, "SELECT COUNT(*) FROM orders"); n != ordersBefore {
		t.Errorf("refused requests wrote orders: %d rows, had %d", n, ordersBefore)
	}
	if n := count(t, topo, "SELECT COUNT(*) FROM outbox"); n != outboxBefore {
		t.Errorf("refused requests wrote outbox rows: %d rows, had %d", n, outboxBefore)
	}
	_, got := h.do(http.MethodGet, "/v1/orders/"+orderNo, "")
	if orderField(got, "version") != float64(1) {
		t.Errorf("refused requests changed the order: %v", got)
	}
}

// A client that sends its body more slowly than ORDERFLOW_HTTP_READ_TIMEOUT
// allows is cut off at that bound, without an order being placed.
func TestRESTSlowBodyIsCutOff(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 1)
	cfg := testConfig()
	const readTimeout = 500 * time.Millisecond
	cfg.HTTP.ReadTimeout, cfg.HTTP.ReadHeaderTimeout = readTimeout, readTimeout
	h := startWith(t, topo, cfg)

	// The server's read deadline starts when it accepts the connection,
	// which is after the dial starts and may be before it returns.
	start := time.Now()
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := placeBody("slow-1")
	fmt.Fprintf(conn, "POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		// A byte every 50 ms: the whole body would take over ten seconds.
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := range len(body) {
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
	_ = conn.SetReadDeadline(time.Now().Add(8 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	took := time.Since(start)
	switch {
	case err == nil:
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), `"body"`) {
			t.Errorf("HTTP %d %s, want 400 naming the body", resp.StatusCode, raw)
		}
	case isTimeout(err):
		t.Fatalf("neither an answer nor a close within 8 s: the read timeout (%s) did not hold", readTimeout)
	}
	if bound := readTimeout + 2*time.Second; took < readTimeout || took > bound {
		t.Errorf("cut off after %s, want between %s and %s", took, readTimeout, bound)
	}
	if n := count(t, topo, "SELECT COUNT(*) FROM orders WHERE request_id = 'slow-1'"); n != 0 {
		t.Errorf("a body never sent placed %d orders", n)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
