package tests

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orderflow/orderflow/shared/auth"
	"github.com/orderflow/orderflow/shared/orderdoc"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// inputSystem is order-command and order-query as processes on the shared
// infrastructure (their own shard databases and read-store database), with
// authentication on and an operator's token, for the tests that send them
// every kind of request.
type inputSystem struct {
	topo                 shard.Topology
	readStore            *mongo.Database
	command, commandGRPC string
	query, queryGRPC     string
	operatorToken        string
	// jwksFile is the public key set the services verify tokens with.
	jwksFile string
}

// startInputSystem generates a signing key in a temporary directory, starts
// both services verifying tokens with its public key, and mints an
// operator's token (may call every method). The
// PlaceOrder rate limit is raised so that the many requests of a test are
// refused for what they carry, never for their number.
func startInputSystem(t *testing.T) *inputSystem {
	t.Helper()
	keys := t.TempDir()
	if _, err := auth.GenerateKeys(keys, 1); err != nil {
		t.Fatal(err)
	}
	iss, err := auth.NewIssuer(auth.IssuerConfig{KeyFile: filepath.Join(keys, auth.SigningKeyFile),
		Issuer: "orderflow-local", Audience: "orderflow"})
	if err != nil {
		t.Fatal(err)
	}
	token := func(r auth.TokenRequest) string {
		r.TTL = time.Hour
		tok, err := iss.Issue(r)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	s := &inputSystem{
		topo:      testinfra.Shards(t, 2),
		readStore: testinfra.MongoDatabase(t),
		command:   addr(t), commandGRPC: addr(t), query: addr(t), queryGRPC: addr(t),
		operatorToken: token(auth.TokenRequest{Role: auth.RoleOperator}),
		jwksFile:      filepath.Join(keys, auth.PublicKeysFile),
	}
	file := writeTopology(t, s.topo)
	authEnv := []string{
		"ORDERFLOW_AUTH_JWKS_FILE=" + s.jwksFile,
		"ORDERFLOW_AUTH_ISSUER=orderflow-local", "ORDERFLOW_AUTH_AUDIENCE=orderflow",
		"ORDERFLOW_AUTH_PLACE_ORDER_RATE=100000", "ORDERFLOW_AUTH_PLACE_ORDER_BURST=100000",
		"ORDERFLOW_TOPOLOGY_FILE=" + file, "ORDERFLOW_LOG_LEVEL=warn",
	}
	startProc(t, "order-command", s.command, append([]string{"ORDERFLOW_HTTP_ADDR=" + s.command,
		"ORDERFLOW_GRPC_ADDR=" + s.commandGRPC}, authEnv...)...)
	startProc(t, "order-query", s.query, append([]string{"ORDERFLOW_HTTP_ADDR=" + s.query,
		"ORDERFLOW_GRPC_ADDR=" + s.queryGRPC, "ORDERFLOW_MONGO_URI=" + testinfra.MongoURI(),
		"ORDERFLOW_MONGO_DATABASE=" + s.readStore.Name()}, authEnv...)...)
	return s
}

// counts are the rows of every shard's orders, order_items and outbox and
// the documents of the read store: what a refused request must not change.
func (s *inputSystem) counts(t *testing.T) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, sh := range s.topo.Shards {
		db := testinfra.DB(t, sh.DSN)
		for _, table := range []string{"orders", "order_items", "outbox"} {
			var n int64
			if err := db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
				t.Fatalf("counting %s on %s: %v", table, sh.Name, err)
			}
			out[sh.Name+"."+table] = n
		}
	}
	n, err := s.readStore.Collection(orderdoc.Collection).CountDocuments(t.Context(), bson.D{})
	if err != nil {
		t.Fatalf("counting the read store's documents: %v", err)
	}
	out["readstore."+orderdoc.Collection] = n
	return out
}

// badInputAdminToken is the relay admin API's shared token in these tests.
const badInputAdminToken = "bad-input-admin-token-0123456789abcdef"

// startAdminRelay starts an outbox relay over the system's shards and
// returns where its admin API listens (REST, gRPC); its token is
// badInputAdminToken.
func (s *inputSystem) startAdminRelay(t *testing.T) (restAddr, grpcAddr string) {
	t.Helper()
	restAddr, grpcAddr = addr(t), addr(t)
	startProc(t, "outbox-relay", restAddr, "ORDERFLOW_RELAY_ID="+testinfra.UniqueName(t, "relay"),
		"ORDERFLOW_TOPOLOGY_FILE="+writeTopology(t, s.topo), "ORDERFLOW_RELAY_TOPIC="+testinfra.KafkaTopic(t, 1),
		"ORDERFLOW_KAFKA_BROKERS="+strings.Join(testinfra.KafkaBrokers(), ","), "ORDERFLOW_ADMIN_TOKEN="+badInputAdminToken,
		"ORDERFLOW_ADMIN_HTTP_ADDR="+restAddr, "ORDERFLOW_ADMIN_GRPC_ADDR="+grpcAddr,
		"ORDERFLOW_AUTH_JWKS_FILE="+s.jwksFile, "ORDERFLOW_LOG_LEVEL=warn")
	return restAddr, grpcAddr
}
