package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	stdhttp "net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/orderflow/orderflow/shared/auth"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	outboxv1 "github.com/orderflow/orderflow/shared/gen/orderflow/outbox/v1"
	"github.com/orderflow/orderflow/shared/orderdoc"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// The PlaceOrder bucket of every caller of the auth system: small, so a
// test empties it in a few calls and sees it refill within a second or two.
const (
	authPlaceRate  = 1
	authPlaceBurst = 3
	// authAdminToken is the relay's shared admin token.
	authAdminToken = "e2e-admin-token-0123456789abcdef"
)

// authSystem is order-command, outbox-relay, order-projector and
// order-query as processes, with authentication on over a JWK Set made for
// the test, on one shard, the test's own topics and Mongo database.
type authSystem struct {
	t                                 *testing.T
	topo                              shard.Topology
	docs                              *mongo.Collection
	command, query, relay             string // HTTP addresses
	commandRPC, queryRPC, admin       *grpc.ClientConn
	sign                              *auth.Issuer
	expired, otherKey, wrongAud       *auth.Issuer
	commandClient                     orderv1.OrderCommandServiceClient
	queryClient                       orderv1.OrderQueryServiceClient
	adminClient                       outboxv1.OutboxAdminServiceClient
	commandGRPC, queryGRPC, adminGRPC string
}

// issuer signs with the key in dir for audience, by clock now.
func issuer(t *testing.T, dir, audience string, now func() time.Time) *auth.Issuer {
	t.Helper()
	i, err := auth.NewIssuer(auth.IssuerConfig{KeyFile: filepath.Join(dir, auth.SigningKeyFile), Issuer: auth.LocalIssuer, Audience: audience, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func startAuthSystem(t *testing.T) *authSystem {
	t.Helper()
	keys, foreign := t.TempDir(), t.TempDir()
	for _, dir := range []string{keys, foreign} {
		if _, err := auth.GenerateKeys(dir, 1); err != nil {
			t.Fatal(err)
		}
	}
	s := &authSystem{t: t,
		sign: issuer(t, keys, auth.DefaultAudience, nil),
		// Two hours ago for one hour: expired an hour ago, far beyond the
		// leeway.
		expired:  issuer(t, keys, auth.DefaultAudience, func() time.Time { return time.Now().Add(-2 * time.Hour) }),
		otherKey: issuer(t, foreign, auth.DefaultAudience, nil),
		wrongAud: issuer(t, keys, "another-api", nil),
	}
	s.topo = testinfra.Shards(t, 1)
	file := writeTopology(t, s.topo)
	internal, external, dlq := testinfra.KafkaTopic(t, 2), testinfra.KafkaTopic(t, 2), testinfra.KafkaTopic(t, 1)
	db := testinfra.MongoDatabase(t)
	s.docs = db.Collection(orderdoc.Collection)
	authEnv := []string{"ORDERFLOW_AUTH_JWKS_FILE=" + filepath.Join(keys, auth.PublicKeysFile),
		"ORDERFLOW_AUTH_PLACE_ORDER_RATE=" + strconv.Itoa(authPlaceRate), "ORDERFLOW_AUTH_PLACE_ORDER_BURST=" + strconv.Itoa(authPlaceBurst)}
	brokers := "ORDERFLOW_KAFKA_BROKERS=" + strings.Join(testinfra.KafkaBrokers(), ",")

	s.command, s.commandGRPC = addr(t), addr(t)
	startProc(t, "order-command", s.command, append([]string{"ORDERFLOW_TOPOLOGY_FILE=" + file, "ORDERFLOW_HTTP_ADDR=" + s.command,
		"ORDERFLOW_GRPC_ADDR=" + s.commandGRPC, "ORDERFLOW_LOG_LEVEL=warn"}, authEnv...)...)
	s.adminGRPC = addr(t)
	// The later ORDERFLOW_ADMIN_GRPC_ADDR wins over startRelayProc's own.
	s.relay = startRelayProc(t, "relay", file, internal, append([]string{"ORDERFLOW_ADMIN_GRPC_ADDR=" + s.adminGRPC,
		"ORDERFLOW_ADMIN_TOKEN=" + authAdminToken}, authEnv...)...).http
	// The projector serves no API: it needs no keys.
	projector := addr(t)
	startProc(t, "order-projector", projector, "ORDERFLOW_TOPOLOGY_FILE="+file, "ORDERFLOW_HTTP_ADDR="+projector, brokers,
		"ORDERFLOW_PROJECTOR_TOPIC="+internal, "ORDERFLOW_EXTERNAL_TOPIC="+external, "ORDERFLOW_DLQ_TOPIC="+dlq,
		"ORDERFLOW_PROJECTOR_GROUP="+testinfra.UniqueName(t, "projector"), "ORDERFLOW_MONGO_URI="+testinfra.MongoURI(),
		"ORDERFLOW_MONGO_DATABASE="+db.Name(), "ORDERFLOW_LOG_LEVEL=warn")
	s.query, s.queryGRPC = addr(t), addr(t)
	startProc(t, "order-query", s.query, append([]string{"ORDERFLOW_TOPOLOGY_FILE=" + file, "ORDERFLOW_HTTP_ADDR=" + s.query,
		"ORDERFLOW_GRPC_ADDR=" + s.queryGRPC, "ORDERFLOW_MONGO_URI=" + testinfra.MongoURI(), "ORDERFLOW_MONGO_DATABASE=" + db.Name(),
		"ORDERFLOW_LOG_LEVEL=warn"}, authEnv...)...)

	dial := func(target string) *grpc.ClientConn {
		conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return conn
	}
	s.commandClient = orderv1.NewOrderCommandServiceClient(dial(s.commandGRPC))
	s.queryClient = orderv1.NewOrderQueryServiceClient(dial(s.queryGRPC))
	s.adminClient = outboxv1.NewOutboxAdminServiceClient(dial(s.adminGRPC))
	return s
}

// token signs a token for r with i, valid for an hour from i's clock.
func (s *authSystem) token(i *auth.Issuer, r auth.TokenRequest) string {
	s.t.Helper()
	r.TTL = time.Hour
	tok, err := i.Issue(r)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// restAnswer is one REST answer: status, headers and the JSON body.
type restAnswer struct {
	code   int
	header stdhttp.Header
	body   map[string]any
}

func (s *authSystem) rest(token, method, url, body string) restAnswer {
	s.t.Helper()
	req, err := stdhttp.NewRequest(method, url, bytes.NewBufferString(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := stdhttp.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		s.t.Fatalf("%s %s: HTTP %d, not JSON: %s", method, url, resp.StatusCode, raw)
	}
	return restAnswer{code: resp.StatusCode, header: resp.Header, body: out}
}

// withToken is a gRPC context carrying token (none when empty).
func withToken(token string) context.Context {
	if token == "" {
		return context.Background()
	}
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

func placeBody(requestID, user, shop string) string {
	return fmt.Sprintf(`{"requestId":%q,"userId":%q,"shopId":%q,
		"items":[{"menuId":"m-1","name":"Bibimbap","quantity":2,"unitPrice":"9000"}],"deliveryAddress":"1 Teheran-ro, Seoul"}`, requestID, user, shop)
}

func placeRequest(requestID, user, shop string) *orderv1.PlaceOrderRequest {
	return &orderv1.PlaceOrderRequest{RequestId: requestID, UserId: user, ShopId: shop, DeliveryAddress: "1 Teheran-ro, Seoul",
		Items: []*orderv1.OrderItem{{MenuId: "m-1", Name: "Bibimbap", Quantity: 2, UnitPrice: 9000}}}
}

// state is what a refused call must leave as it was: the shard's orders
// (how many, and the sum of their versions), its outbox rows (how many,
// how many PENDING) and the read store's documents (how many, and the sum
// of their versions).
type state struct {
	orders, orderVersions, outbox, pending, docs, docVersions int64
}

func (s *authSystem) state() state {
	s.t.Helper()
	var st state
	db := testinfra.DB(s.t, s.topo.Shards[0].DSN)
	if err := db.QueryRow("SELECT COUNT(*), COALESCE(SUM(version), 0) FROM orders").Scan(&st.orders, &st.orderVersions); err != nil {
		s.t.Fatal(err)
	}
	if err := db.QueryRow("SELECT COUNT(*), COALESCE(SUM(status = 'PENDING'), 0) FROM outbox").Scan(&st.outbox, &st.pending); err != nil {
		s.t.Fatal(err)
	}
	cur, err := s.docs.Find(context.Background(), bson.D{})
	if err != nil {
		s.t.Fatal(err)
	}
	var docs []orderdoc.Document
	if err := cur.All(context.Background(), &docs); err != nil {
		s.t.Fatal(err)
	}
	st.docs = int64(len(docs))
	for _, d := range docs {
		st.docVersions += int64(d.Version)
	}
	return st
}

// settled waits until every outbox row is published and every order's
// document has its order's version, so that a refused call is the only
// thing that could change the state.
func (s *authSystem) settled() state {
	s.t.Helper()
	var st state
	testinfra.Eventually(s.t, 30*time.Second, func() bool {
		st = s.state()
		return st.pending == 0 && st.docs == st.orders && st.docVersions == st.orderVersions
	}, "the system did not settle: %+v", st)
	return st
}

// readOwn polls the query API as the order's user until it serves the
// order at version (the projector writes it shortly after the change).
func (s *authSystem) readOwn(token, orderNo string, version int) {
	s.t.Helper()
	var a restAnswer
	testinfra.Eventually(s.t, 30*time.Second, func() bool {
		a = s.rest(token, "GET", fmt.Sprintf("http://%s/v1/orders/%s?minVersion=%d", s.query, orderNo, version), "")
		return a.code == stdhttp.StatusOK && a.body["stale"] == false
	}, "order %s v%d never served on the read side: %+v", orderNo, version, a)
}

// Every API refuses a call without a valid token (401) and a call outside
// the caller's scope (403), over REST with a google.rpc.Status body and over
// gRPC with the status code, and a refused call changes nothing: the
// shard's order and outbox rows and the read store's documents are counted
// before and after each. The calls in scope succeed, and a caller over its
// PlaceOrder limit is refused (429 / RESOURCE_EXHAUSTED, Retry-After) until
// its bucket refilled.
func TestAuthEndToEnd(t *testing.T) {
	testinfra.Integration(t)
	t.Parallel()
	s := startAuthSystem(t)
	u1 := s.token(s.sign, auth.TokenRequest{Role: auth.RoleUser, User: "u-1"})
	u2 := s.token(s.sign, auth.TokenRequest{Role: auth.RoleUser, User: "u-2"})
	s1 := s.token(s.sign, auth.TokenRequest{Role: auth.RoleShop, Shop: "s-1"})
	s2 := s.token(s.sign, auth.TokenRequest{Role: auth.RoleShop, Shop: "s-2"})
	op := s.token(s.sign, auth.TokenRequest{Role: auth.RoleOperator})

	// Allowed: a user places its order and reads it on both sides.
	placed := s.rest(u1, "POST", "http://"+s.command+"/v1/orders", placeBody("auth-e2e-1", "u-1", "s-1"))
	if placed.code != stdhttp.StatusOK {
		t.Fatalf("u-1 placing its order: %+v", placed)
	}
	orderNoText := placed.body["order"].(map[string]any)["orderNo"].(string)
	orderNo, _ := strconv.ParseInt(orderNoText, 10, 64)
	if a := s.rest(u1, "GET", "http://"+s.command+"/v1/orders/"+orderNoText, ""); a.code != stdhttp.StatusOK {
		t.Errorf("u-1 reading its order on the command side: %+v", a)
	}
	s.readOwn(u1, orderNoText, 1)
	if _, err := s.queryClient.GetOrder(withToken(u1), &orderv1.GetOrderViewRequest{OrderNo: orderNo}); err != nil {
		t.Errorf("u-1 reading its order over gRPC: %v", err)
	}
	if _, err := s.commandClient.PlaceOrder(withToken(u2), placeRequest("auth-e2e-2", "u-2", "s-2")); err != nil {
		t.Fatalf("u-2 placing its order over gRPC: %v", err)
	}
	var stats *outboxv1.GetOutboxStatsResponse
	testinfra.Eventually(t, 30*time.Second, func() bool {
		var err error
		stats, err = s.adminClient.GetOutboxStats(withToken(op), &outboxv1.GetOutboxStatsRequest{})
		return err == nil && len(stats.GetShards()) == 1 && stats.GetShards()[0].GetPublished() == 2
	}, "the operator never saw both rows published: %v", stats)
	var outboxID int64
	if err := testinfra.DB(t, s.topo.Shards[0].DSN).QueryRow("SELECT MIN(id) FROM outbox").Scan(&outboxID); err != nil {
		t.Fatal(err)
	}
	shardName := s.topo.Shards[0].Name
	replayBody := fmt.Sprintf(`{"shard":%q,"ids":[%d],"reason":"auth test"}`, shardName, outboxID)
	replay := &outboxv1.ReplayOutboxMessagesRequest{Shard: shardName, Ids: []int64{outboxID}, Reason: "auth test"}

	cmd, qry, adm := "http://"+s.command, "http://"+s.query, "http://"+s.relay
	order := cmd + "/v1/orders/" + orderNoText
	refusals := []struct {
		name              string
		token             string
		method, url, body string
		grpc              func(ctx context.Context) error
		wantHTTP          int
		wantCode          codes.Code
	}{
		{name: "no token", method: "GET", url: order, wantHTTP: 401, wantCode: codes.Unauthenticated,
			grpc: func(ctx context.Context) error {
				_, err := s.commandClient.GetOrder(ctx, &orderv1.GetOrderRequest{OrderNo: orderNo})
				return err
			}},
		{name: "expired token", token: s.token(s.expired, auth.TokenRequest{Role: auth.RoleUser, User: "u-1"}), method: "POST", url: order + ":cancel",
			body: `{"reason":"expired"}`, wantHTTP: 401, wantCode: codes.Unauthenticated,
			grpc: func(ctx context.Context) error {
				_, err := s.commandClient.CancelOrder(ctx, &orderv1.CancelOrderRequest{OrderNo: orderNo, Reason: "expired"})
				return err
			}},
		{name: "token signed by another key", token: s.token(s.otherKey, auth.TokenRequest{Role: auth.RoleOperator}), method: "GET",
			url: qry + "/v1/users/u-1/orders", wantHTTP: 401, wantCode: codes.Unauthenticated,
			grpc: func(ctx context.Context) error {
				_, err := s.queryClient.ListUserOrders(ctx, &orderv1.ListUserOrdersRequest{UserId: "u-1"})
				return err
			}},
		{name: "wrong audience", token: s.token(s.wrongAud, auth.TokenRequest{Role: auth.RoleUser, User: "u-1"}), method: "POST",
			url: cmd + "/v1/orders", body: placeBody("auth-e2e-aud", "u-1", "s-1"), wantHTTP: 401, wantCode: codes.Unauthenticated,
			grpc: func(ctx context.Context) error {
				_, err := s.commandClient.PlaceOrder(ctx, placeRequest("auth-e2e-aud", "u-1", "s-1"))
				return err
			}},
		{name: "user places an order for another user", token: u2, method: "POST", url: cmd + "/v1/orders",
			body: placeBody("auth-e2e-for-u1", "u-1", "s-1"), wantHTTP: 403, wantCode: codes.PermissionDenied,
			grpc: func(ctx context.Context) error {
				_, err := s.commandClient.PlaceOrder(ctx, placeRequest("auth-e2e-for-u1", "u-1", "s-1"))
				return err
			}},
		{name: "user reads another user's order on the command side", token: u2, method: "GET", url: order, wantHTTP: 403, wantCode: codes.PermissionDenied,
			grpc: func(ctx context.Context) error {
				_, err := s.commandClient.GetOrder(ctx, &orderv1.GetOrderRequest{OrderNo: orderNo})
				return err
			}},
		{name: "user reads another user's order on the query side", token: u2, method: "GET", url: qry + "/v1/orders/" + orderNoText,
			wantHTTP: 403, wantCode: codes.PermissionDenied,
			grpc: func(ctx context.Context) error {
				_, err := s.queryClient.GetOrder(ctx, &orderv1.GetOrderViewRequest{OrderNo: orderNo})
				return err
			}},
		{name: "user lists another user's orders", token: u2, method: "GET", url: qry + "/v1/users/u-1/orders", wantHTTP: 403, wantCode: codes.PermissionDenied,
			grpc: func(ctx context.Context) error {
				_, err := s.queryClient.ListUserOrders(ctx, &orderv1.ListUserOrdersRequest{UserId: "u-1"})
				return err
			}},
		{name: "user cancels another user's order", token: u2, method: "POST", url: order + ":cancel", body: `{"reason":"not mine"}`,
			wantHTTP: 403, wantCode: codes.PermissionDenied,
			grpc: func(ctx context.Context) error {
				_, err := s.commandClient.CancelOrder(ctx, &orderv1.CancelOrderRequest{OrderNo: orderNo, Reason: "not mine"})
				return err
			}},
		{name: "shop advances another shop's order", token: s2, method: "POST", url: order + ":advance", body: `{"status":"ACCEPTED"}`,
			wantHTTP: 403, wantCode: codes.PermissionDenied,
			grpc: func(ctx context.Context) error {
				_, err := s.commandClient.AdvanceOrder(ctx, &orderv1.AdvanceOrderRequest{OrderNo: orderNo, Status: orderv1.Order_ACCEPTED})
				return err
			}},
		{name: "shop lists another shop's orders", token: s2, method: "GET", url: qry + "/v1/shops/s-1/orders", wantHTTP: 403, wantCode: codes.PermissionDenied,
			grpc: func(ctx context.Context) error {
				_, err := s.queryClient.ListShopOrders(ctx, &orderv1.ListShopOrdersRequest{ShopId: "s-1"})
				return err
			}},
		{name: "user replays outbox rows", token: u1, method: "POST", url: adm + "/v1/outbox/messages:replay", body: replayBody,
			wantHTTP: 403, wantCode: codes.PermissionDenied,
			grpc: func(ctx context.Context) error {
				_, err := s.adminClient.ReplayOutboxMessages(ctx, replay)
				return err
			}},
		{name: "replay without a token", method: "POST", url: adm + "/v1/outbox/messages:replay", body: replayBody,
			wantHTTP: 401, wantCode: codes.Unauthenticated,
			grpc: func(ctx context.Context) error {
				_, err := s.adminClient.ReplayOutboxMessages(ctx, replay)
				return err
			}},
	}
	// One after another: each compares the whole system's state before
	// and after its calls.
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			before := s.settled()
			a := s.rest(tc.token, tc.method, tc.url, tc.body)
			if a.code != tc.wantHTTP || a.body["code"] != float64(tc.wantCode) || a.body["message"] == nil {
				t.Errorf("REST: HTTP %d %v, want %d with a google.rpc.Status of code %d", a.code, a.body, tc.wantHTTP, tc.wantCode)
			}
			if tc.wantHTTP == 401 && !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("REST: 401 without a Bearer challenge: %q", a.header.Get("WWW-Authenticate"))
			}
			if err := tc.grpc(withToken(tc.token)); status.Code(err) != tc.wantCode {
				t.Errorf("gRPC: %v, want %s", err, tc.wantCode)
			}
			if after := s.state(); after != before {
				t.Errorf("a refused call changed the system: before %+v, after %+v", before, after)
			}
		})
	}

	// Allowed: a shop advances its own order, a user cancels its own, an
	// operator does everything.
	if a := s.rest(s1, "POST", order+":advance", `{"status":"ACCEPTED"}`); a.code != stdhttp.StatusOK {
		t.Errorf("s-1 advancing its own order: %+v", a)
	}
	if _, err := s.commandClient.AdvanceOrder(withToken(s1), &orderv1.AdvanceOrderRequest{OrderNo: orderNo, Status: orderv1.Order_DELIVERING}); err != nil {
		t.Errorf("s-1 advancing its own order over gRPC: %v", err)
	}
	s.readOwn(u1, orderNoText, 3)
	if a := s.rest(s1, "GET", qry+"/v1/shops/s-1/orders", ""); a.code != stdhttp.StatusOK || len(a.body["orders"].([]any)) != 1 {
		t.Errorf("s-1 listing its orders: %+v", a)
	}
	if a := s.rest(u1, "GET", qry+"/v1/users/u-1/orders", ""); a.code != stdhttp.StatusOK || len(a.body["orders"].([]any)) != 1 {
		t.Errorf("u-1 listing its orders: %+v", a)
	}
	if a := s.rest(op, "GET", qry+"/v1/users/u-2/orders", ""); a.code != stdhttp.StatusOK || len(a.body["orders"].([]any)) != 1 {
		t.Errorf("the operator listing u-2's orders: %+v", a)
	}
	if _, err := s.queryClient.ListShopOrders(withToken(op), &orderv1.ListShopOrdersRequest{ShopId: "s-2"}); err != nil {
		t.Errorf("the operator listing s-2's orders over gRPC: %v", err)
	}
	if a := s.rest(op, "POST", order+":cancel", `{"reason":"operator"}`); a.code != stdhttp.StatusOK {
		t.Errorf("the operator cancelling u-1's order: %+v", a)
	}
	if a := s.rest(op, "GET", adm+"/v1/outbox/stats", ""); a.code != stdhttp.StatusOK {
		t.Errorf("the operator reading the outbox stats: %+v", a)
	}
	if a := s.rest(authAdminToken, "GET", adm+"/v1/outbox/stats", ""); a.code != stdhttp.StatusOK {
		t.Errorf("the shared admin token reading the outbox stats: %+v", a)
	}
	dry := &outboxv1.ReplayOutboxMessagesRequest{Shard: shardName, Ids: []int64{outboxID}, Reason: "auth test", DryRun: true}
	if _, err := s.adminClient.ReplayOutboxMessages(withToken(op), dry); err != nil {
		t.Errorf("the operator's dry-run replay over gRPC: %v", err)
	}

	// A caller over its PlaceOrder bucket: 429 with Retry-After over REST,
	// RESOURCE_EXHAUSTED with retry-after over gRPC (one bucket for both),
	// nothing written; another caller is not held back; once the bucket
	// refilled the caller is let through.
	u3 := s.token(s.sign, auth.TokenRequest{Role: auth.RoleUser, User: "u-3"})
	for i := range authPlaceBurst {
		if a := s.rest(u3, "POST", cmd+"/v1/orders", placeBody(fmt.Sprintf("auth-e2e-burst-%d", i), "u-3", "s-3")); a.code != stdhttp.StatusOK {
			t.Fatalf("u-3's call %d within its burst: %+v", i, a)
		}
	}
	before := s.settled()
	a := s.rest(u3, "POST", cmd+"/v1/orders", placeBody("auth-e2e-over", "u-3", "s-3"))
	if a.code != stdhttp.StatusTooManyRequests || a.body["code"] != float64(codes.ResourceExhausted) {
		t.Errorf("u-3 over its burst over REST: %+v, want 429 with RESOURCE_EXHAUSTED", a)
	}
	if secs, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || secs < 1 {
		t.Errorf("REST 429 Retry-After %q, want whole seconds, at least 1", a.header.Get("Retry-After"))
	}
	var header metadata.MD
	_, err := s.commandClient.PlaceOrder(withToken(u3), placeRequest("auth-e2e-over", "u-3", "s-3"), grpc.Header(&header))
	if status.Code(err) != codes.ResourceExhausted || len(header.Get("retry-after")) != 1 {
		t.Errorf("u-3 over its burst over gRPC: %v, retry-after %v; want RESOURCE_EXHAUSTED with retry-after", err, header.Get("retry-after"))
	}
	if after := s.state(); after != before {
		t.Errorf("a call over the limit changed the system: before %+v, after %+v", before, after)
	}
	if _, err := s.commandClient.PlaceOrder(withToken(u2), placeRequest("auth-e2e-u2-again", "u-2", "s-2")); err != nil {
		t.Errorf("u-2 held back by u-3's limit: %v", err)
	}
	// The bucket gains a call every 1/authPlaceRate s; refused tries take
	// nothing from it.
	var last error
	testinfra.Eventually(t, 10*time.Second, func() bool {
		_, last = s.commandClient.PlaceOrder(withToken(u3), placeRequest("auth-e2e-over", "u-3", "s-3"))
		return last == nil
	}, "u-3 was never let through again: %v", last)
	if got := s.state().orders; got != before.orders+2 {
		t.Errorf("%d orders after u-2's and u-3's, want %d", got, before.orders+2)
	}
}
