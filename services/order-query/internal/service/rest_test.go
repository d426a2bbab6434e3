package service_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orderflow/orderflow/services/order-query/internal/service"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/orderdoc"
)

func TestRESTGetOrder(t *testing.T) {
	t.Parallel()
	h := start(t)
	d := advance(doc(4242, "user-1", "shop-1", 0), "ACCEPTED")
	h.put(d)

	code, body := h.get("/v1/orders/4242")
	if code != http.StatusOK {
		t.Fatalf("HTTP %d %v", code, body)
	}
	if stale, ok := body["stale"]; !ok || stale != false {
		t.Errorf("stale = %v (present %v), want false", stale, ok)
	}
	for field, want := range map[string]any{
		"orderNo": "4242", "status": "ACCEPTED", "userId": "user-1", "shopId": "shop-1",
		"totalAmount": "19500", "version": float64(2), "deliveryAddress": "1 Teheran-ro, Seoul",
		"placedAt": "2026-11-01T12:00:00Z", "updatedAt": "2026-11-01T12:01:00Z", "cancelReason": "",
	} {
		if got := orderField(body, field); got != want {
			t.Errorf("%s = %#v, want %#v", field, got, want)
		}
	}
	items, _ := orderField(body, "items").([]any)
	if len(items) != 2 {
		t.Fatalf("items = %v, want 2", items)
	}
	first, _ := items[0].(map[string]any)
	if first["menuId"] != "m-1" || first["name"] != "Bibimbap" || first["quantity"] != float64(2) || first["unitPrice"] != "9000" {
		t.Errorf("items[0] = %v", first)
	}
	history, _ := orderField(body, "statusHistory").([]any)
	if len(history) != 2 {
		t.Fatalf("statusHistory = %v, want 2 entries", history)
	}
	for i, want := range []map[string]any{
		{"status": "PLACED", "version": float64(1), "changedAt": "2026-11-01T12:00:00Z"},
		{"status": "ACCEPTED", "version": float64(2), "changedAt": "2026-11-01T12:01:00Z"},
	} {
		got, _ := history[i].(map[string]any)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("statusHistory[%d].%s = %v, want %v", i, k, got[k], v)
			}
		}
	}

	code, body = h.get("/v1/orders/4243")
	if code != http.StatusNotFound || body["code"] != float64(5) {
		t.Errorf("missing order: HTTP %d %v, want 404 NOT_FOUND", code, body)
	}
}

func TestRESTMinVersionAlreadyReached(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *service.Config) { c.MinVersionWait = time.Minute })
	h.put(advance(doc(7, "user-1", "shop-1", 0), "ACCEPTED"))
	for _, minVersion := range []string{"1", "2"} {
		began := time.Now()
		code, body := h.get("/v1/orders/7?minVersion=" + minVersion)
		if code != http.StatusOK || body["stale"] != false || orderField(body, "version") != float64(2) {
			t.Errorf("minVersion=%s: HTTP %d %v, want version 2, not stale", minVersion, code, body)
		}
		// A document that is new enough is served without waiting; a wait
		// would take the whole minute.
		if took := time.Since(began); took > 10*time.Second {
			t.Errorf("minVersion=%s took %s", minVersion, took)
		}
	}
}

func TestRESTMinVersionWaitsForTheProjector(t *testing.T) {
	t.Parallel()
	// The wait is long, so that a slow machine cannot end it before the
	// newer version arrives; the request returns as soon as it does.
	h := start(t, func(c *service.Config) { c.MinVersionWait = 2500 * time.Millisecond })
	d := doc(8, "user-1", "shop-1", 0)
	h.put(d)

	written := make(chan time.Time, 1)
	projector := time.AfterFunc(100*time.Millisecond, func() {
		writing := time.Now()
		h.put(advance(d, "ACCEPTED"))
		written <- writing
	})
	t.Cleanup(func() { projector.Stop() })
	began := time.Now()
	code, body := h.get("/v1/orders/8?minVersion=2")
	answered := time.Now()
	if code != http.StatusOK || body["stale"] != false || orderField(body, "version") != float64(2) || orderField(body, "status") != "ACCEPTED" {
		t.Fatalf("HTTP %d %v, want version 2 ACCEPTED, not stale", code, body)
	}
	if at := <-written; answered.Sub(began) < at.Sub(began) {
		t.Errorf("answered after %s, before the new version was written after %s", answered.Sub(began), at.Sub(began))
	}
	if took := answered.Sub(began); took >= 2500*time.Millisecond {
		t.Errorf("took %s: the request waited out the whole deadline instead of returning when the version arrived", took)
	}
}

func TestRESTMinVersionWaitsForAMissingOrder(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *service.Config) { c.MinVersionWait = 2500 * time.Millisecond })
	projector := time.AfterFunc(100*time.Millisecond, func() { h.put(doc(9, "user-1", "shop-1", 0)) })
	t.Cleanup(func() { projector.Stop() })
	code, body := h.get("/v1/orders/9?minVersion=1")
	if code != http.StatusOK || body["stale"] != false || orderField(body, "version") != float64(1) {
		t.Fatalf("HTTP %d %v, want version 1, not stale", code, body)
	}
}

func TestRESTMinVersionNeverArrives(t *testing.T) {
	t.Parallel()
	h := start(t) // minVersionWait
	h.put(doc(10, "user-1", "shop-1", 0))

	began := time.Now()
	code, body := h.get("/v1/orders/10?minVersion=3")
	took := time.Since(began)
	if code != http.StatusOK || body["stale"] != true || orderField(body, "version") != float64(1) {
		t.Errorf("HTTP %d %v, want version 1 and stale", code, body)
	}
	if took < minVersionWait || took > minVersionWait+5*time.Second {
		t.Errorf("answered after %s, want about %s", took, minVersionWait)
	}

	began = time.Now()
	code, body = h.get("/v1/orders/11?minVersion=1")
	took = time.Since(began)
	if code != http.StatusNotFound || body["code"] != float64(5) {
		t.Errorf("an order that never appears: HTTP %d %v, want 404", code, body)
	}
	if took < minVersionWait {
		t.Errorf("an order that never appears was reported missing after %s, before the wait of %s", took, minVersionWait)
	}
}

// userOrders stores a user's orders on two shards, with placedAt ties
// between shards, interleaved with other users' orders, and returns the
// user's order numbers newest first.
func userOrders(h *harness, user string, n int) []string {
	var docs []orderdoc.Document
	for i := range n {
		// Every third pair of orders shares a millisecond, so the order
		// number decides; order numbers are not in placedAt order.
		offset := time.Duration(i/3*3) * time.Second
		if i%3 == 2 {
			offset += 1500 * time.Millisecond
		}
		no := int64(1000 + (i*7919)%997)
		d := doc(no, user, "shop-1", offset)
		docs = append(docs, d)
		other := doc(no+100_000, user+"-other", "shop-1", offset)
		h.put(d, other)
	}
	sort.Slice(docs, func(i, j int) bool {
		if !docs[i].PlacedAt.Equal(docs[j].PlacedAt) {
			return docs[i].PlacedAt.After(docs[j].PlacedAt)
		}
		return docs[i].OrderNo > docs[j].OrderNo
	})
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = itoa(d.OrderNo)
	}
	return out
}

func TestRESTUserOrdersAcrossShards(t *testing.T) {
	t.Parallel()
	h := start(t)
	want := userOrders(h, "user-1", 23)
	shards := map[string]bool{}
	var names []string
	if err := h.db.Collection(orderdoc.Collection).Distinct(context.Background(), "shard",
		bson.D{{Key: "userId", Value: "user-1"}}).Decode(&names); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		shards[n] = true
	}
	if len(shards) != 2 {
		t.Fatalf("the user's orders are on shards %v, want two", names)
	}

	for _, size := range []int{1, 4, 5, 22, 23, 100} {
		got, pages := h.listAll("/v1/users/user-1/orders", size)
		if !slices.Equal(got, want) {
			t.Errorf("page size %d: orders\n%v\nwant\n%v", size, got, want)
		}
		if wantPages := max(1, (len(want)+size-1)/size); pages != wantPages {
			t.Errorf("page size %d: %d pages, want %d", size, pages, wantPages)
		}
	}

	code, body := h.get("/v1/users/user-1/orders")
	if code != http.StatusOK || !slices.Equal(orderNos(body), want[:20]) || body["nextPageToken"] == "" {
		t.Errorf("default page: HTTP %d, orders %v, token %q; want the newest 20 and a token", code, orderNos(body), body["nextPageToken"])
	}
	code, body = h.get("/v1/users/nobody/orders")
	if orders, ok := body["orders"].([]any); code != http.StatusOK || !ok || len(orders) != 0 || body["nextPageToken"] != "" {
		t.Errorf("a user without orders: HTTP %d %v, want an empty list and no token", code, body)
	}
}

func TestRESTPagesStayStableWhileOrdersArrive(t *testing.T) {
	t.Parallel()
	h := start(t)
	want := userOrders(h, "user-1", 12)
	page := func(token string) ([]string, string) {
		code, body := h.get("/v1/users/user-1/orders?pageSize=5&pageToken=" + url.QueryEscape(token))
		if code != http.StatusOK {
			t.Fatalf("HTTP %d %v", code, body)
		}
		next, _ := body["nextPageToken"].(string)
		return orderNos(body), next
	}

	got, token := page("")
	newer := int64(50_000)
	for token != "" {
		// Newer orders arrive between the pages, and the first order of the
		// next page changes status; neither moves the pages still to come.
		for range 3 {
			newer++
			h.put(doc(newer, "user-1", "shop-1", time.Hour+time.Duration(newer)*time.Millisecond))
		}
		no, err := strconv.ParseInt(want[len(got)], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		var d orderdoc.Document
		if err := h.db.Collection(orderdoc.Collection).FindOne(context.Background(), bson.D{{Key: "_id", Value: no}}).Decode(&d); err != nil {
			t.Fatal(err)
		}
		h.put(advance(d, "ACCEPTED"))

		var more []string
		more, token = page(token)
		got = append(got, more...)
	}
	if !slices.Equal(got, want) {
		t.Errorf("orders across pages\n%v\nwant\n%v", got, want)
	}

	all, _ := h.listAll("/v1/users/user-1/orders", 7)
	if len(all) != len(want)+int(newer-50_000) || !slices.Equal(all[len(all)-len(want):], want) {
		t.Errorf("a fresh listing has %d orders ending %v, want the %d newer ones first, then %v", len(all), all, newer-50_000, want)
	}
}

func TestRESTShopOrders(t *testing.T) {
	t.Parallel()
	h := start(t)
	statuses := []string{"PLACED", "ACCEPTED", "DELIVERING", "DELIVERED", "CANCELLED"}
	byStatus := map[string][]string{}
	var all []string
	// Newest first: order 2000+i is placed i minutes before base.
	for i := range 17 {
		no := int64(2000 + i)
		d := doc(no, fmt.Sprintf("user-%d", i%4), "shop-1", -time.Duration(i)*time.Minute)
		st := statuses[i%len(statuses)]
		for _, next := range statuses[1:] {
			if d.Status == st {
				break
			}
			if st == "CANCELLED" {
				d = advance(d, "CANCELLED")
				break
			}
			d = advance(d, next)
		}
		h.put(d, doc(no+10_000, "user-1", "shop-2", -time.Duration(i)*time.Minute))
		byStatus[st] = append(byStatus[st], itoa(no))
		all = append(all, itoa(no))
	}

	got, _ := h.listAll("/v1/shops/shop-1/orders", 6)
	if !slices.Equal(got, all) {
		t.Errorf("all statuses: %v, want %v", got, all)
	}
	for _, st := range statuses {
		got, _ := h.listAll("/v1/shops/shop-1/orders?status="+st, 2)
		if !slices.Equal(got, byStatus[st]) {
			t.Errorf("status %s: %v, want %v", st, got, byStatus[st])
		}
	}
	_, body := h.get("/v1/shops/shop-1/orders?status=CANCELLED&pageSize=1")
	orders, _ := body["orders"].([]any)
	if len(orders) != 1 {
		t.Fatalf("orders = %v", body)
	}
	o, _ := orders[0].(map[string]any)
	if o["status"] != "CANCELLED" || o["shopId"] != "shop-1" {
		t.Errorf("a cancelled order of shop-1 reads %v", o)
	}
}

func TestRESTRejectsBadInput(t *testing.T) {
	t.Parallel()
	h := start(t)
	userOrders(h, "user-1", 5)
	for i := range 3 {
		h.put(doc(int64(3000+i), "user-9", "shop-1", time.Duration(i)*time.Minute))
	}
	firstPageToken := func(path string) string {
		t.Helper()
		code, body := h.get(path)
		token, _ := body["nextPageToken"].(string)
		if code != http.StatusOK || token == "" {
			t.Fatalf("%s: HTTP %d %v, want a next page", path, code, body)
		}
		return url.QueryEscape(token)
	}
	userToken := firstPageToken("/v1/users/user-1/orders?pageSize=2")
	shopToken := firstPageToken("/v1/shops/shop-1/orders?pageSize=2")
	placedToken := firstPageToken("/v1/shops/shop-1/orders?status=PLACED&pageSize=2")
	forged := base64.RawURLEncoding.EncodeToString([]byte(`{"t":1,"n":5,"q":"0123456789abcdef01234567"}`))

	tests := []struct {
		name, path, wantField string
	}{
		{"corrupt page token", "/v1/users/user-1/orders?pageToken=not-a-token", "pageToken"},
		{"page token of base64 garbage", "/v1/users/user-1/orders?pageToken=" + base64.RawURLEncoding.EncodeToString([]byte("garbage")), "pageToken"},
		{"truncated page token", "/v1/users/user-1/orders?pageToken=" + userToken[:len(userToken)-4], "pageToken"},
		{"forged page token", "/v1/users/user-1/orders?pageToken=" + forged, "pageToken"},
		{"another user's page token", "/v1/users/user-2/orders?pageToken=" + userToken, "pageToken"},
		{"a user's page token on a shop", "/v1/shops/shop-1/orders?pageToken=" + userToken, "pageToken"},
		{"a shop's page token on a user", "/v1/users/user-1/orders?pageToken=" + shopToken, "pageToken"},
		{"a shop's page token with a status", "/v1/shops/shop-1/orders?status=PLACED&pageToken=" + shopToken, "pageToken"},
		{"a status page token without it", "/v1/shops/shop-1/orders?pageToken=" + placedToken, "pageToken"},
		{"a status page token on another shop", "/v1/shops/shop-2/orders?status=PLACED&pageToken=" + placedToken, "pageToken"},
		{"page size 101", "/v1/users/user-1/orders?pageSize=101", "pageSize"},
		{"negative page size", "/v1/users/user-1/orders?pageSize=-1", "pageSize"},
		{"shop page size 1000", "/v1/shops/shop-1/orders?pageSize=1000", "pageSize"},
		{"user id over 64 characters", "/v1/users/" + strings.Repeat("u", 65) + "/orders", "userId"},
		{"shop id over 64 characters", "/v1/shops/" + strings.Repeat("s", 65) + "/orders", "shopId"},
		{"order number 0", "/v1/orders/0", "orderNo"},
		{"negative order number", "/v1/orders/-3", "orderNo"},
		{"non-numeric order number", "/v1/orders/abc", "orderNo"},
		{"negative min version", "/v1/orders/1000?minVersion=-1", "minVersion"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := h.get(tc.path)
			if code != http.StatusBadRequest || body["code"] != float64(3) {
				t.Fatalf("HTTP %d %v, want 400 INVALID_ARGUMENT", code, body)
			}
			if fields := violations(body); !slices.Contains(fields, tc.wantField) {
				t.Errorf("field violations %v, want one for %q (body %v)", fields, tc.wantField, body)
			}
		})
	}

	// Values the gateway cannot parse are refused before they reach the
	// service.
	for path, field := range map[string]string{
		"/v1/users/user-1/orders?pageSize=ten":  "pageSize",
		"/v1/shops/shop-1/orders?status=FLYING": "status",
		"/v1/shops/shop-1/orders?status=42":     "status",
		"/v1/orders/1000?minVersion=x":          "minVersion",
	} {
		code, body := h.get(path)
		if code != http.StatusBadRequest || body["code"] != float64(3) || !slices.Contains(violations(body), field) {
			t.Errorf("%s: HTTP %d %v, want 400 INVALID_ARGUMENT naming %s", path, code, body, field)
		}
	}
	// An empty id leaves a path no route matches.
	for _, path := range []string{"/v1/users//orders", "/v1/shops//orders"} {
		if code, body := h.get(path); code != http.StatusNotFound {
			t.Errorf("%s: HTTP %d %v, want 404", path, code, body)
		}
	}
}

func TestRESTOperations(t *testing.T) {
	t.Parallel()
	h := start(t)
	h.put(doc(1, "user-1", "shop-1", 0))
	if code, body := h.get("/healthz"); code != http.StatusOK || body["status"] != "ok" {
		t.Errorf("/healthz: %d %v", code, body)
	}
	code, body := h.get("/readyz")
	checks, _ := body["checks"].(map[string]any)
	if code != http.StatusOK || body["status"] != "ready" || checks["mongodb"] != "ok" {
		t.Errorf("/readyz: %d %v", code, body)
	}
	code, body = h.get("/openapi.json")
	paths, _ := body["paths"].(map[string]any)
	for _, p := range []string{"/v1/orders/{orderNo}", "/v1/users/{userId}/orders", "/v1/shops/{shopId}/orders"} {
		if _, ok := paths[p]; code != http.StatusOK || !ok {
			t.Errorf("/openapi.json: HTTP %d, lacks %s", code, p)
		}
	}

	h.get("/v1/orders/1")
	h.get("/v1/users/user-1/orders")
	if _, err := h.grpc.GetOrder(context.Background(), &orderv1.GetOrderViewRequest{OrderNo: 1}); err != nil {
		t.Fatalf("gRPC GetOrder: %v", err)
	}
	resp, err := h.http.Get(h.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw := new(strings.Builder)
	if _, err := fmt.Fprint(raw, readBody(t, resp)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		// REST requests run the gRPC chain: they are counted with the gRPC
		// calls (GetOrder once over each).
		`grpc_server_handled_total{grpc_code="OK",grpc_method="GetOrder",grpc_service="orderflow.order.v1.OrderQueryService",grpc_type="unary"} 2` + "\n",
		`grpc_server_handled_total{grpc_code="OK",grpc_method="ListUserOrders",grpc_service="orderflow.order.v1.OrderQueryService",grpc_type="unary"} 1` + "\n",
		"go_goroutines",
	} {
		if !strings.Contains(raw.String(), want) {
			t.Errorf("/metrics lacks %s:\n%s", want, raw)
		}
	}
}

func TestIndexesAreCreatedAtStartAndAgain(t *testing.T) {
	t.Parallel()
	h := start(t)
	// A second instance over the same database creates them again: a no-op.
	startOn(t, h.db)

	cur, err := h.db.Collection(orderdoc.Collection).Indexes().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var specs []struct {
		Name string `bson:"name"`
		Key  bson.D `bson:"key"`
	}
	if err := cur.All(context.Background(), &specs); err != nil {
		t.Fatal(err)
	}
	byName := map[string]bson.D{}
	for _, s := range specs {
		byName[s.Name] = s.Key
	}
	for _, m := range orderdoc.Indexes() {
		var opts options.IndexOptions
		for _, set := range m.Options.List() {
			if err := set(&opts); err != nil {
				t.Fatal(err)
			}
		}
		name := *opts.Name
		key, ok := byName[name]
		if !ok {
			t.Errorf("index %s is missing; have %v", name, byName)
			continue
		}
		if got, want := keyString(key), keyString(m.Keys.(bson.D)); got != want {
			t.Errorf("index %s has keys %s, want %s", name, got, want)
		}
	}
	for _, name := range []string{orderdoc.IndexUserPlaced, orderdoc.IndexShopPlaced, orderdoc.IndexShopStatusPlaced} {
		if _, ok := byName[name]; !ok {
			t.Errorf("index %s is missing", name)
		}
	}
}

// keyString renders an index key as "field:1,field:-1" whatever numeric type
// the server used for the directions.
func keyString(key bson.D) string {
	parts := make([]string, len(key))
	for i, e := range key {
		parts[i] = fmt.Sprintf("%s:%v", e.Key, e.Value)
	}
	return strings.Join(parts, ",")
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
