package service_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/sqlrows"
	"github.com/orderflow/orderflow/shared/testinfra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func placeBody(requestID string) string {
	return fmt.Sprintf(`{"requestId":%q,"userId":"user-1","shopId":"shop-1",
		"items":[{"menuId":"m-1","name":"Bibimbap","quantity":2,"unitPrice":"9000"},{"menuId":"m-2","name":"Tea","quantity":1,"unitPrice":"1500"}],
		"deliveryAddress":"1 Teheran-ro, Seoul"}`, requestID)
}

func TestRESTOrderLifecycle(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 2)
	h := start(t, topo)

	code, placed := h.do(http.MethodPost, "/v1/orders", placeBody("lifecycle-1"))
	if code != http.StatusOK {
		t.Fatalf("place: HTTP %d %v", code, placed)
	}
	orderNo, _ := orderField(placed, "orderNo").(string)
	if orderNo == "" {
		t.Fatalf("place: no orderNo (int64 must be a JSON string): %v", placed)
	}
	for field, want := range map[string]any{
		"status": "PLACED", "userId": "user-1", "shopId": "shop-1", "totalAmount": "19500", "version": float64(1),
		"placedAt": "2026-11-01T12:00:00Z",
	} {
		if got := orderField(placed, field); got != want {
			t.Errorf("place: %s = %v, want %v", field, got, want)
		}
	}

	code, again := h.do(http.MethodPost, "/v1/orders", placeBody("lifecycle-1"))
	if code != http.StatusOK || orderField(again, "orderNo") != orderNo {
		t.Fatalf("retry: HTTP %d, orderNo %v, want the first order %s", code, orderField(again, "orderNo"), orderNo)
	}
	if n := count(t, topo, "SELECT COUNT(*) FROM orders WHERE request_id = 'lifecycle-1'"); n != 1 {
		t.Errorf("a retried request stored %d orders, want 1", n)
	}
	if n := count(t, topo, "SELECT COUNT(*) FROM outbox WHERE order_no = ?", orderNo); n != 1 {
		t.Errorf("a retried request stored %d outbox rows, want 1", n)
	}

	code, reused := h.do(http.MethodPost, "/v1/orders", strings.Replace(placeBody("lifecycle-1"), "user-1", "user-2", 1))
	if code != http.StatusConflict || reused["code"] != float64(6) {
		t.Errorf("requestId reused for another order: HTTP %d %v, want 409 ALREADY_EXISTS", code, reused)
	}

	code, got := h.do(http.MethodGet, "/v1/orders/"+orderNo, "")
	if code != http.StatusOK || orderField(got, "orderNo") != orderNo {
		t.Fatalf("get: HTTP %d %v", code, got)
	}

	steps := []struct {
		name, path, body string
		wantCode         int
		wantStatus       string
		wantRule         string
	}{
		{name: "accept", path: ":advance", body: `{"status":"ACCEPTED"}`, wantCode: 200, wantStatus: "ACCEPTED"},
		{name: "accept twice", path: ":advance", body: `{"status":"ACCEPTED"}`, wantCode: 400, wantRule: "STATUS_TRANSITION"},
		{name: "skip a step", path: ":advance", body: `{"status":"DELIVERED"}`, wantCode: 400, wantRule: "STATUS_TRANSITION"},
		{name: "backwards", path: ":advance", body: `{"status":"PLACED"}`, wantCode: 400, wantRule: "STATUS_TRANSITION"},
		{name: "deliver", path: ":advance", body: `{"status":"DELIVERING"}`, wantCode: 200, wantStatus: "DELIVERING"},
		{name: "delivered", path: ":advance", body: `{"status":"DELIVERED"}`, wantCode: 200, wantStatus: "DELIVERED"},
		{name: "past the end", path: ":advance", body: `{"status":"DELIVERED"}`, wantCode: 400, wantRule: "STATUS_TRANSITION"},
		{name: "cancel a delivered order", path: ":cancel", body: `{"reason":"cold food"}`, wantCode: 200, wantStatus: "CANCELLED"},
		{name: "cancel twice", path: ":cancel", body: `{"reason":"again"}`, wantCode: 400, wantRule: "ALREADY_CANCELLED"},
		{name: "advance a cancelled order", path: ":advance", body: `{"status":"ACCEPTED"}`, wantCode: 400, wantRule: "STATUS_TRANSITION"},
	}
	version := 1.0
	for _, s := range steps {
		code, body := h.do(http.MethodPost, "/v1/orders/"+orderNo+s.path, s.body)
		if code != s.wantCode {
			t.Fatalf("%s: HTTP %d %v, want %d", s.name, code, body, s.wantCode)
		}
		if s.wantStatus != "" {
			version++
			if orderField(body, "status") != s.wantStatus || orderField(body, "version") != version {
				t.Fatalf("%s: status %v version %v, want %s %v", s.name, orderField(body, "status"), orderField(body, "version"), s.wantStatus, version)
			}
			continue
		}
		if body["code"] != float64(9) || !strings.Contains(fmt.Sprint(body["details"]), s.wantRule) {
			t.Fatalf("%s: %v, want FAILED_PRECONDITION naming rule %s", s.name, body, s.wantRule)
		}
	}

	_, final := h.do(http.MethodGet, "/v1/orders/"+orderNo, "")
	if orderField(final, "cancelReason") != "cold food" {
		t.Errorf("cancelReason = %v", orderField(final, "cancelReason"))
	}
	history, _ := orderField(final, "statusHistory").([]any)
	if len(history) != 5 {
		t.Errorf("statusHistory has %d entries, want 5: %v", len(history), history)
	}

	// One zero-payload outbox row per change, in version order.
	s, err := topo.Route(mustInt(t, orderNo))
	if err != nil {
		t.Fatal(err)
	}
	dsn, _ := topo.DSN(s.Shard)
	rows, err := testinfra.DB(t, dsn).Query("SELECT event_type, order_version, status, traceparent FROM outbox WHERE order_no = ? ORDER BY id", orderNo)
	if err != nil {
		t.Fatal(err)
	}
	type outboxRow struct {
		typ, status, tp string
		ver             int32
	}
	stored, err := sqlrows.ScanAll(rows, func(rows *sql.Rows) (outboxRow, error) {
		var r outboxRow
		err := rows.Scan(&r.typ, &r.ver, &r.status, &r.tp)
		return r, err
	})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	traceparent := regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$`)
	for i, r := range stored {
		v := int32(i + 1)
		types = append(types, r.typ)
		if r.ver != v || r.status != "PENDING" || !traceparent.MatchString(r.tp) {
			t.Errorf("outbox row %d: version %d status %s traceparent %q", v, r.ver, r.status, r.tp)
		}
	}
	want := []string{"OrderPlaced", "OrderAccepted", "OrderDelivering", "OrderDelivered", "OrderCancelled"}
	if !slices.Equal(types, want) {
		t.Errorf("outbox events %v, want %v", types, want)
	}
}

func TestRESTCarriesTheCallersTrace(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 1)
	h := start(t, topo)
	req, _ := http.NewRequest(http.MethodPost, h.base+"/v1/orders", strings.NewReader(placeBody("traced-1")))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	resp, err := h.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	var tp string
	if err := testinfra.DB(t, topo.Shards[0].DSN).QueryRow("SELECT traceparent FROM outbox").Scan(&tp); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") {
		t.Errorf("outbox traceparent %q does not continue the caller's trace", tp)
	}
}

func TestRESTCancelWindow(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 1)
	h := start(t, topo)
	place := func(id string) string {
		_, body := h.do(http.MethodPost, "/v1/orders", placeBody(id))
		no, _ := orderField(body, "orderNo").(string)
		if no == "" {
			t.Fatalf("place %s: %v", id, body)
		}
		return no
	}
	young, old := place("window-young"), place("window-old")
	h.clock.Advance(30*24*time.Hour - time.Minute)
	if code, body := h.do(http.MethodPost, "/v1/orders/"+young+":cancel", `{"reason":"late"}`); code != http.StatusOK {
		t.Errorf("cancel one minute inside the window: HTTP %d %v", code, body)
	}
	h.clock.Advance(time.Minute)
	code, body := h.do(http.MethodPost, "/v1/orders/"+old+":cancel", `{"reason":"too late"}`)
	if code != http.StatusBadRequest || body["code"] != float64(9) ||
		!strings.Contains(fmt.Sprint(body["message"]), "30 days") || !strings.Contains(fmt.Sprint(body["details"]), "CANCEL_WINDOW") {
		t.Errorf("cancel at 30 days: HTTP %d %v, want FAILED_PRECONDITION naming the 30-day rule", code, body)
	}
	_, got := h.do(http.MethodGet, "/v1/orders/"+old, "")
	if orderField(got, "status") != "PLACED" || orderField(got, "version") != float64(1) {
		t.Errorf("a refused cancel changed the order: %v", got)
	}
}

func TestRESTRejectsBadInputAndChangesNothing(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 2)
	h := start(t, topo)
	_, placed := h.do(http.MethodPost, "/v1/orders", placeBody("existing"))
	orderNo, _ := orderField(placed, "orderNo").(string)
	if orderNo == "" {
		t.Fatalf("place: %v", placed)
	}
	item := `{"menuId":"m","name":"n","quantity":1,"unitPrice":"100"}`
	order := func(replace ...string) string {
		b := placeBody("bad-input")
		for i := 0; i+1 < len(replace); i += 2 {
			b = strings.Replace(b, replace[i], replace[i+1], 1)
		}
		return b
	}
	manyItems := "[" + strings.TrimSuffix(strings.Repeat(item+",", 101), ",") + "]"
	tests := []struct {
		name, method, path, body string
		wantField                string
	}{
		{"no items", "POST", "/v1/orders", regexp.MustCompile(`"items":\[.*?\}\],`).ReplaceAllString(order(), `"items":[],`), "items"},
		{"more than 100 items", "POST", "/v1/orders", regexp.MustCompile(`"items":\[.*?\}\],`).ReplaceAllString(order(), `"items":`+manyItems+`,`), "items"},
		{"quantity 0", "POST", "/v1/orders", order(`"quantity":2`, `"quantity":0`), "items[0].quantity"},
		{"quantity 1000", "POST", "/v1/orders", order(`"quantity":2`, `"quantity":1000`), "items[0].quantity"},
		{"negative price", "POST", "/v1/orders", order(`"unitPrice":"1500"`, `"unitPrice":"-1"`), "items[1].unitPrice"},
		{"unit price of MaxInt64", "POST", "/v1/orders", order(`"quantity":2,"unitPrice":"9000"`, `"quantity":999,"unitPrice":"9223372036854775807"`), "items[0].unitPrice"},
		{"total over 10,000,000", "POST", "/v1/orders", order(`"quantity":2,"unitPrice":"9000"`, `"quantity":999,"unitPrice":"20000"`), "items"},
		{"user id with a slash", "POST", "/v1/orders", order(`"user-1"`, `"a/b"`), "userId"},
		{"empty request id", "POST", "/v1/orders", order(`"requestId":"bad-input"`, `"requestId":""`), "requestId"},
		{"user id over 64 characters", "POST", "/v1/orders", order(`"user-1"`, `"`+strings.Repeat("u", 65)+`"`), "userId"},
		{"empty shop id", "POST", "/v1/orders", order(`"shop-1"`, `""`), "shopId"},
		{"empty address", "POST", "/v1/orders", order(`"1 Teheran-ro, Seoul"`, `""`), "deliveryAddress"},
		{"unknown field", "POST", "/v1/orders", order(`"userId"`, `"coupon":"FREE","userId"`), "coupon"},
		{"body over 64 KiB", "POST", "/v1/orders", order(`"1 Teheran-ro, Seoul"`, `"`+strings.Repeat("a", 70<<10)+`"`), "body"},
		{"malformed JSON", "POST", "/v1/orders", `{"requestId":`, "body"},
		{"quantity not a number", "POST", "/v1/orders", order(`"quantity":2`, `"quantity":"two"`), "items[0].quantity"},
		{"non-numeric order number", "GET", "/v1/orders/abc", "", "orderNo"},
		{"zero order number", "GET", "/v1/orders/0", "", "orderNo"},
		{"advance non-numeric order number", "POST", "/v1/orders/abc:advance", `{"status":"ACCEPTED"}`, "orderNo"},
		{"advance without status", "POST", "/v1/orders/" + orderNo + ":advance", `{}`, "status"},
		{"advance to an unknown status", "POST", "/v1/orders/" + orderNo + ":advance", `{"status":"FLYING"}`, "status"},
		{"advance to an unknown status number", "POST", "/v1/orders/" + orderNo + ":advance", `{"status":99}`, "status"},
		{"advance to status number 0", "POST", "/v1/orders/" + orderNo + ":advance", `{"status":0}`, "status"},
		{"advance to STATUS_UNSPECIFIED", "POST", "/v1/orders/" + orderNo + ":advance", `{"status":"STATUS_UNSPECIFIED"}`, "status"},
		{"cancel without reason", "POST", "/v1/orders/" + orderNo + ":cancel", `{}`, "reason"},
		{"cancel with a 513-character reason", "POST", "/v1/orders/" + orderNo + ":cancel", `{"reason":"` + strings.Repeat("r", 513) + `"}`, "reason"},
	}
	ordersBefore := count(t, topo, "SELECT COUNT(*) FROM orders")
	outboxBefore := count(t, topo, "SELECT COUNT(*) FROM outbox")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := h.do(tc.method, tc.path, tc.body)
			if code != http.StatusBadRequest || body["code"] != float64(3) {
				t.Fatalf("HTTP %d %v, want 400 INVALID_ARGUMENT", code, body)
			}
			if fields := violations(body); !slices.Contains(fields, tc.wantField) {
				t.Errorf("field violations %v, want one for %q (body %v)", fields, tc.wantField, body)
			}
		})
	}
	if n := count(t, topo, "SELECT COUNT(*) FROM orders"); n != ordersBefore {
		t.Errorf("bad input changed the orders: %d rows, had %d", n, ordersBefore)
	}
	if n := count(t, topo, "SELECT COUNT(*) FROM outbox"); n != outboxBefore {
		t.Errorf("bad input changed the outbox: %d rows, had %d", n, outboxBefore)
	}
	_, got := h.do(http.MethodGet, "/v1/orders/"+orderNo, "")
	if orderField(got, "version") != float64(1) {
		t.Errorf("bad input changed the order: %v", got)
	}
}

func TestRESTNotFoundAndOperations(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 2)
	h := start(t, topo)
	for _, path := range []string{"/v1/orders/123456789"} {
		if code, body := h.do(http.MethodGet, path, ""); code != http.StatusNotFound || body["code"] != float64(5) {
			t.Errorf("GET %s: HTTP %d %v, want 404 NOT_FOUND", path, code, body)
		}
	}
	for _, path := range []string{"/v1/orders/123456789:advance", "/v1/orders/123456789:cancel"} {
		body := `{"status":"ACCEPTED","reason":"x"}`
		if strings.HasSuffix(path, ":advance") {
			body = `{"status":"ACCEPTED"}`
		} else {
			body = `{"reason":"x"}`
		}
		if code, resp := h.do(http.MethodPost, path, body); code != http.StatusNotFound {
			t.Errorf("POST %s: HTTP %d %v, want 404", path, code, resp)
		}
	}
	if code, body := h.do(http.MethodGet, "/healthz", ""); code != 200 || body["status"] != "ok" {
		t.Errorf("/healthz: %d %v", code, body)
	}
	code, body := h.do(http.MethodGet, "/readyz", "")
	checks, _ := body["checks"].(map[string]any)
	if code != 200 || checks["shard-0"] != "ok" || checks["shard-1"] != "ok" {
		t.Errorf("/readyz: %d %v", code, body)
	}
	if code, body := h.do(http.MethodGet, "/openapi.json", ""); code != 200 || !strings.Contains(fmt.Sprint(body["paths"]), "/v1/orders/{orderNo}:advance") {
		t.Errorf("/openapi.json: %d %v", code, body)
	}
	h.do(http.MethodPost, "/v1/orders", placeBody("metrics-1"))
	if _, err := h.grpc.GetOrder(context.Background(), &orderv1.GetOrderRequest{OrderNo: 123456789}); status.Code(err) != codes.NotFound {
		t.Errorf("gRPC GetOrder of a missing order: %v, want NotFound", err)
	}
	resp, err := h.http.Get(h.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw := new(strings.Builder)
	_, _ = fmt.Fprint(raw, readAll(t, resp))
	// REST requests run the gRPC chain: they are counted with the gRPC calls.
	for _, want := range []string{
		`grpc_server_handled_total{grpc_code="OK",grpc_method="PlaceOrder",grpc_service="orderflow.order.v1.OrderCommandService",grpc_type="unary"} 1` + "\n",
		`grpc_server_handled_total{grpc_code="NotFound",grpc_method="GetOrder",grpc_service="orderflow.order.v1.OrderCommandService",grpc_type="unary"} 2` + "\n",
		"go_goroutines",
	} {
		if !strings.Contains(raw.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
