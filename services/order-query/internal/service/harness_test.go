package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/orderflow/orderflow/services/order-query/internal/service"
	"github.com/orderflow/orderflow/shared/auth"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/orderdoc"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// minVersionWait is the tests' short wait for a minimum version.
const minVersionWait = 300 * time.Millisecond

// harness is a running order-query service over its own MongoDB database.
type harness struct {
	t    *testing.T
	db   *mongo.Database
	base string
	grpc orderv1.OrderQueryServiceClient
	http *http.Client
}

func testConfig(db *mongo.Database) service.Config {
	return service.Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", LogLevel: "info",
		MongoURI: testinfra.MongoURI(), MongoDatabase: db.Name(),
		MinVersionWait: minVersionWait, MaxWaitingReads: 100, WaitPollBatch: 50, RequestTimeout: 3 * time.Second,
		StartupTimeout: 10 * time.Second, ShutdownTimeout: 5 * time.Second, MaxBodyBytes: 64 << 10,
		// These tests are about reads, not callers: tokens are checked by
		// the auth tests (tests/auth_e2e_test.go).
		Auth: auth.Settings{Disabled: true},
	}
}

// start runs the service over a fresh database until the test ends, and
// waits until it reports ready. configure, when given, changes the test
// configuration first.
func start(t *testing.T, configure ...func(*service.Config)) *harness {
	t.Helper()
	db := testinfra.MongoDatabase(t)
	return startOn(t, db, configure...)
}

// startOn is start over an existing database.
func startOn(t *testing.T, db *mongo.Database, configure ...func(*service.Config)) *harness {
	t.Helper()
	cfg := testConfig(db)
	for _, c := range configure {
		c(&cfg)
	}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	svc, _ := testinfra.RunService(t, func(ctx context.Context) (*service.Service, error) {
		return service.New(ctx, cfg, logger)
	})
	conn, err := grpc.NewClient(svc.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	h := &harness{t: t, db: db, base: "http://" + svc.HTTPAddr(),
		grpc: orderv1.NewOrderQueryServiceClient(conn), http: &http.Client{Timeout: 10 * time.Second}}
	testinfra.Eventually(t, 10*time.Second, func() bool {
		code, _ := h.get("/readyz")
		return code == http.StatusOK
	}, "service never became ready")
	return h
}

// get sends a GET and returns the status code and decoded JSON body.
func (h *harness) get(path string) (int, map[string]any) {
	h.t.Helper()
	resp, err := h.http.Get(h.base + path)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			h.t.Fatalf("GET %s: response is not JSON (%v): %s", path, err, raw)
		}
	}
	return resp.StatusCode, out
}

// put stores a document the way the projector does: one per order, keyed by
// the order number.
func (h *harness) put(docs ...orderdoc.Document) {
	h.t.Helper()
	coll := h.db.Collection(orderdoc.Collection)
	for _, d := range docs {
		if _, err := coll.ReplaceOne(context.Background(), bson.D{{Key: "_id", Value: d.OrderNo}}, d,
			options.Replace().SetUpsert(true)); err != nil {
			h.t.Fatalf("storing order %d: %v", d.OrderNo, err)
		}
	}
}

// base is the placedAt of the tests' orders.
var base = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// doc builds a document at version 1 (PLACED) placed at base + offset.
func doc(orderNo int64, userID, shopID string, offset time.Duration) orderdoc.Document {
	placed := base.Add(offset)
	return orderdoc.Document{
		OrderNo: orderNo, UserID: userID, ShopID: shopID, Status: "PLACED",
		Items: []orderdoc.Item{
			{MenuID: "m-1", Name: "Bibimbap", Quantity: 2, UnitPrice: 9000},
			{MenuID: "m-2", Name: "Tea", Quantity: 1, UnitPrice: 1500},
		},
		TotalAmount: 19500, DeliveryAddress: "1 Teheran-ro, Seoul",
		PlacedAt: placed, UpdatedAt: placed,
		StatusHistory: []orderdoc.StatusChange{{Status: "PLACED", Version: 1, ChangedAt: placed}},
		Version:       1, Shard: fmt.Sprintf("shard-%d", orderNo%2), ProjectedAt: placed.Add(time.Second),
	}
}

// advance returns d one step further, as the projector would store it.
func advance(d orderdoc.Document, status string) orderdoc.Document {
	d.Version++
	d.Status = status
	d.UpdatedAt = d.UpdatedAt.Add(time.Minute)
	d.StatusHistory = append(append([]orderdoc.StatusChange(nil), d.StatusHistory...),
		orderdoc.StatusChange{Status: status, Version: d.Version, ChangedAt: d.UpdatedAt})
	return d
}

// orderField digs a field out of {"order":{...}}.
func orderField(body map[string]any, name string) any {
	o, _ := body["order"].(map[string]any)
	return o[name]
}

// orderNos lists the orderNo of each order of a list response.
func orderNos(body map[string]any) []string {
	orders, _ := body["orders"].([]any)
	out := make([]string, 0, len(orders))
	for _, o := range orders {
		m, _ := o.(map[string]any)
		no, _ := m["orderNo"].(string)
		out = append(out, no)
	}
	return out
}

// listAll follows a list's page tokens to the end and returns every orderNo
// and the number of pages.
func (h *harness) listAll(path string, pageSize int) ([]string, int) {
	h.t.Helper()
	var all []string
	token := ""
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	for pages := 1; ; pages++ {
		if pages > 1000 {
			h.t.Fatalf("%s: the page tokens never end", path)
		}
		code, body := h.get(fmt.Sprintf("%s%spageSize=%d&pageToken=%s", path, sep, pageSize, url.QueryEscape(token)))
		if code != http.StatusOK {
			h.t.Fatalf("%s page %d: HTTP %d %v", path, pages, code, body)
		}
		nos := orderNos(body)
		if len(nos) > pageSize {
			h.t.Fatalf("%s page %d: %d orders, page size %d", path, pages, len(nos), pageSize)
		}
		all = append(all, nos...)
		next, ok := body["nextPageToken"].(string)
		if !ok {
			h.t.Fatalf("%s page %d: no nextPageToken field: %v", path, pages, body)
		}
		if next == "" {
			return all, pages
		}
		token = next
	}
}

func violations(body map[string]any) []string {
	var fields []string
	details, _ := body["details"].([]any)
	for _, d := range details {
		dm, _ := d.(map[string]any)
		fvs, _ := dm["fieldViolations"].([]any)
		for _, fv := range fvs {
			fm, _ := fv.(map[string]any)
			if f, ok := fm["field"].(string); ok {
				fields = append(fields, f)
			}
		}
	}
	return fields
}

func itoa(n int64) string { return fmt.Sprint(n) }
