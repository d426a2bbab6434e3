package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	stdhttp "net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow/shared/authclient"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// pipeline is every service of the system, as processes, on the test's own
// shards, topics and Mongo database.
type pipeline struct {
	t           *testing.T
	command     string
	commandGRPC string
	query       string
	queryGRPC   string
	projector   func() *proc
	// relayHTTP serves the relay's /metrics (and its admin API).
	relayHTTP string
	// mongoDatabase holds the read side's documents.
	mongoDatabase string
	// externalTopic and dlqTopic are the projector's.
	externalTopic, dlqTopic string
	// topologyFile is what every service of the pipeline watches.
	topologyFile string
	// auth is the key every service verifies tokens with; do sends its
	// operator token, place and doAs a caller's own.
	auth *testinfra.Auth
}

func startPipeline(t *testing.T) *pipeline {
	t.Helper()
	topo := testinfra.Shards(t, 2)
	file := writeTopology(t, topo)
	internal, external, dlq := testinfra.KafkaTopic(t, 6), testinfra.KafkaTopic(t, 6), testinfra.KafkaTopic(t, 1)
	db := testinfra.MongoDatabase(t)
	brokers := "ORDERFLOW_KAFKA_BROKERS=" + strings.Join(testinfra.KafkaBrokers(), ",")
	p := &pipeline{t: t, command: addr(t), commandGRPC: addr(t), query: addr(t), queryGRPC: addr(t), topologyFile: file, auth: testinfra.NewAuth(t)}
	keys := p.auth.Env()
	startProc(t, "order-command", p.command, append([]string{"ORDERFLOW_TOPOLOGY_FILE=" + file, "ORDERFLOW_HTTP_ADDR=" + p.command,
		"ORDERFLOW_GRPC_ADDR=" + p.commandGRPC, "ORDERFLOW_LOG_LEVEL=warn"}, keys...)...)
	p.relayHTTP = startRelayProc(t, "relay", file, internal, append(keys, "ORDERFLOW_RELAY_BATCH_SIZE=500")...).http
	p.mongoDatabase, p.externalTopic, p.dlqTopic = db.Name(), external, dlq
	group := testinfra.UniqueName(t, "projector")
	p.projector = func() *proc {
		http := addr(t)
		return startProc(t, "order-projector", http, "ORDERFLOW_TOPOLOGY_FILE="+file, "ORDERFLOW_HTTP_ADDR="+http, brokers,
			"ORDERFLOW_PROJECTOR_TOPIC="+internal, "ORDERFLOW_EXTERNAL_TOPIC="+external, "ORDERFLOW_DLQ_TOPIC="+dlq,
			"ORDERFLOW_PROJECTOR_GROUP="+group, "ORDERFLOW_MONGO_URI="+testinfra.MongoURI(), "ORDERFLOW_MONGO_DATABASE="+db.Name(),
			"ORDERFLOW_LOG_LEVEL=warn")
	}
	startProc(t, "order-query", p.query, append([]string{"ORDERFLOW_TOPOLOGY_FILE=" + file, "ORDERFLOW_HTTP_ADDR=" + p.query,
		"ORDERFLOW_GRPC_ADDR=" + p.queryGRPC, "ORDERFLOW_MONGO_URI=" + testinfra.MongoURI(), "ORDERFLOW_MONGO_DATABASE=" + db.Name(),
		"ORDERFLOW_LOG_LEVEL=warn"}, keys...)...)
	return p
}

// do sends a request as an operator, who may call everything: the harness
// checks what the system did, for every user and shop at once.
func (p *pipeline) do(method, url, body string) (int, map[string]any) {
	p.t.Helper()
	return p.doAs(p.auth.Operator(), method, url, body)
}

// doAs sends a request with the bearer token ("" sends none).
func (p *pipeline) doAs(token, method, url, body string) (int, map[string]any) {
	p.t.Helper()
	req, _ := stdhttp.NewRequest(method, url, bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/json")
	authclient.SetBearer(req, token)
	resp, err := stdhttp.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		p.t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp.StatusCode, out
}

// place puts an order through the command API with the user's own token
// and returns its number.
func (p *pipeline) place(requestID, user, shop string) string {
	p.t.Helper()
	code, body := p.doAs(p.auth.User(user), "POST", "http://"+p.command+"/v1/orders", fmt.Sprintf(`{"requestId":%q,"userId":%q,"shopId":%q,
		"items":[{"menuId":"m-1","name":"Bibimbap","quantity":2,"unitPrice":"9000"}],"deliveryAddress":"Seoul"}`, requestID, user, shop))
	order, _ := body["order"].(map[string]any)
	if code != 200 || order["orderNo"] == nil {
		p.t.Fatalf("place %s: HTTP %d %v", requestID, code, body)
	}
	return order["orderNo"].(string)
}

// An order placed and changed through the command API is readable through
// the query API by number (read-your-writes with minVersion), by user and by
// shop, across both shards.
func TestOrderPipelineEndToEnd(t *testing.T) {
	testinfra.Integration(t)
	t.Parallel()
	p := startPipeline(t)
	p.projector()

	final := map[string]struct {
		status  string
		version float64
	}{}
	acceptedOnShop1 := 0
	// Each change is made by whom it belongs to: the shop advances, the
	// user cancels.
	for i := range 12 {
		user, shop := fmt.Sprintf("user-%d", i%2), fmt.Sprintf("shop-%d", i%3)
		no := p.place(fmt.Sprintf("pipe-%d", i), user, shop)
		status, version := "PLACED", 1.0
		if i%3 == 1 {
			if code, body := p.doAs(p.auth.Shop(shop), "POST", "http://"+p.command+"/v1/orders/"+no+":advance", `{"status":"ACCEPTED"}`); code != 200 {
				t.Fatalf("advance: %d %v", code, body)
			}
			status, version = "ACCEPTED", 2
		}
		if i%4 == 3 {
			if code, body := p.doAs(p.auth.User(user), "POST", "http://"+p.command+"/v1/orders/"+no+":cancel", `{"reason":"changed my mind"}`); code != 200 {
				t.Fatalf("cancel: %d %v", code, body)
			}
			status, version = "CANCELLED", version+1
		}
		if status == "ACCEPTED" && i%3 == 1 {
			acceptedOnShop1++
		}
		final[no] = struct {
			status  string
			version float64
		}{status, version}
	}

	for no, want := range final {
		var body map[string]any
		testinfra.Eventually(t, 30*time.Second, func() bool {
			var code int
			code, body = p.do("GET", fmt.Sprintf("http://%s/v1/orders/%s?minVersion=%d", p.query, no, int(want.version)), "")
			return code == 200 && body["stale"] == false
		}, "order %s never reached version %v on the read side: %v", no, want.version, body)
		order := body["order"].(map[string]any)
		if order["status"] != want.status || order["version"] != want.version || order["totalAmount"] != "18000" {
			t.Errorf("order %s on the read side: %v, want %s v%v", no, order, want.status, want.version)
		}
	}

	// user-0 placed the even orders: 6, newest first, over pages of 4, as
	// user-0 lists them.
	var seen []string
	token := ""
	for {
		url := fmt.Sprintf("http://%s/v1/users/user-0/orders?pageSize=4", p.query)
		if token != "" {
			url += "&pageToken=" + token
		}
		code, body := p.doAs(p.auth.User("user-0"), "GET", url, "")
		if code != 200 {
			t.Fatalf("user list: %d %v", code, body)
		}
		for _, o := range body["orders"].([]any) {
			seen = append(seen, o.(map[string]any)["orderNo"].(string))
		}
		if token, _ = body["nextPageToken"].(string); token == "" {
			break
		}
	}
	if len(seen) != 6 {
		t.Errorf("user-0's orders: %v, want 6", seen)
	}
	code, body := p.doAs(p.auth.Shop("shop-1"), "GET", fmt.Sprintf("http://%s/v1/shops/shop-1/orders?status=ACCEPTED", p.query), "")
	orders, _ := body["orders"].([]any)
	if code != 200 || len(orders) != acceptedOnShop1 {
		t.Errorf("shop-1's ACCEPTED orders: %d, %d orders, want %d", code, len(orders), acceptedOnShop1)
	}
}

// The projector killed with SIGKILL while orders stream in, and started
// again: every order still reaches the read side.
func TestProjectorKilledMidStreamCatchesUp(t *testing.T) {
	testinfra.Integration(t)
	t.Parallel()
	p := startPipeline(t)
	first := p.projector()

	var mu sync.Mutex
	var placed []string
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 75 {
				no := p.place(fmt.Sprintf("kill-%d-%d", w, i), "user-k", "shop-k")
				mu.Lock()
				placed = append(placed, no)
				mu.Unlock()
			}
		})
	}
	visible := func() int {
		_, body := p.do("GET", fmt.Sprintf("http://%s/v1/shops/shop-k/orders?pageSize=100", p.query), "")
		orders, _ := body["orders"].([]any)
		return len(orders)
	}
	testinfra.Eventually(t, 30*time.Second, func() bool { return visible() > 20 }, "nothing projected before the kill")
	first.kill()
	wg.Wait()
	p.projector()
	for _, no := range placed {
		testinfra.Eventually(t, 60*time.Second, func() bool {
			code, body := p.do("GET", fmt.Sprintf("http://%s/v1/orders/%s?minVersion=1", p.query, no), "")
			return code == 200 && body["stale"] == false
		}, "order %s never projected after the restart", no)
	}
}
