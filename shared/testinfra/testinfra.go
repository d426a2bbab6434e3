// Package testinfra gives integration tests their own slice of the real local
// infrastructure (see scripts/infra): fresh databases with the schema on
// every MariaDB shard server, fresh Kafka topics, a fresh MongoDB database, and
// for fault tests a private MariaDB server the test may kill. Tests therefore
// run in parallel and never see each other's data.
//
// Where the infrastructure listens comes from ORDERFLOW_TEST_* variables
// (written by `scripts/infra up` to .state/infra.env) with the same defaults
// as the script. `go test -short` skips every test that needs it.
package testinfra

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/migrations"
	"github.com/orderflow/orderflow/shared/shard"
)

const (
	defaultMySQLAddrs = "127.0.0.1:3307,127.0.0.1:3308"
	defaultKafka      = "127.0.0.1:19092"
	defaultMongoURI   = "mongodb://127.0.0.1:27017"
)

// Integration marks a test as needing the local infrastructure: it is
// skipped with -short and nowhere else.
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the local infrastructure (run without -short)")
	}
}

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// MySQLAddrs lists the host:port of every running shard server.
func MySQLAddrs() []string {
	return strings.Split(env("ORDERFLOW_TEST_MYSQL_ADDRS", defaultMySQLAddrs), ",")
}

// KafkaBrokers lists the Kafka bootstrap servers.
func KafkaBrokers() []string {
	return strings.Split(env("ORDERFLOW_TEST_KAFKA_BROKERS", defaultKafka), ",")
}

// MongoURI is the MongoDB connection string.
func MongoURI() string { return env("ORDERFLOW_TEST_MONGO_URI", defaultMongoURI) }

var unsafeChars = regexp.MustCompile(`[^a-z0-9]+`)

// UniqueName is a short name derived from the test's name plus random
// characters, usable as a database or topic name.
func UniqueName(t testing.TB, prefix string) string {
	base := unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(base) > 24 {
		base = base[len(base)-24:]
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return strings.Trim(prefix+"_"+base, "_") + "_" + hex.EncodeToString(b)
}

// TestPool is the pool configuration tests use: small, with short timeouts.
func TestPool() shard.PoolConfig {
	return shard.PoolConfig{
		MaxOpenConns: 16, MaxIdleConns: 16, ConnMaxLifetime: time.Minute,
		DialTimeout: time.Second, IOTimeout: 10 * time.Second,
		// Tests run side by side on two shared cores, where a healthy
		// shard can take longer than the production deadlines (800 ms) to
		// answer; tests of a hung shard set those deadlines themselves
		// (WithHungShardDeadlines).
		StatementTimeout: 5 * time.Second, TxTimeout: 5 * time.Second,
	}
}

// WithHungShardDeadlines is cfg with the production statement and
// transaction deadlines, for tests that prove a hung shard is answered for
// within a second.
func WithHungShardDeadlines(cfg shard.PoolConfig) shard.PoolConfig {
	cfg.StatementTimeout, cfg.TxTimeout = shard.DefaultStatementTimeout, shard.DefaultTxTimeout
	return cfg
}

// Shards creates n fresh databases with the schema, spread over the running
// shard servers, and returns a one-epoch topology over them. The databases
// are dropped when the test ends.
func Shards(t testing.TB, n int) shard.Topology {
	t.Helper()
	Integration(t)
	addrs := MySQLAddrs()
	name := UniqueName(t, "t")
	topo := shard.Topology{Epochs: []shard.Epoch{{FirstOrderNo: 1}}}
	for i := range n {
		addr := addrs[i%len(addrs)]
		dbName := fmt.Sprintf("%s_s%d", name, i)
		dsn := CreateDatabase(t, "root@tcp("+addr+")/", dbName)
		shardName := fmt.Sprintf("shard-%d", i)
		topo.Shards = append(topo.Shards, shard.Spec{Name: shardName, DSN: dsn})
		topo.Epochs[0].Shards = append(topo.Epochs[0].Shards, shardName)
	}
	return topo
}

// ShardsWithPrivate returns a one-epoch topology of two shards: shard-0 on
// the shared servers and shard-1 on a private MariaDB server of the test's
// own, which the test may kill (Kill) or hang (Stop) while the other keeps
// serving.
func ShardsWithPrivate(t testing.TB) (shard.Topology, *MariaDB) {
	t.Helper()
	healthy := Shards(t, 1)
	private := StartMariaDB(t)
	return shard.Topology{
		Shards: []shard.Spec{
			{Name: "shard-0", DSN: healthy.Shards[0].DSN},
			{Name: "shard-1", DSN: CreateDatabase(t, private.ServerDSN(), "orderflow")},
		},
		Epochs: []shard.Epoch{{FirstOrderNo: 1, Shards: []string{"shard-0", "shard-1"}}},
	}, private
}

// CreateDatabase creates a database on the server of serverDSN, applies the
// migrations to it, drops it when the test ends, and returns its DSN.
func CreateDatabase(t testing.TB, serverDSN, dbName string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	server, err := shard.OpenDB(serverDSN, TestPool())
	if err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	defer server.Close()
	if _, err := server.ExecContext(ctx, "CREATE DATABASE `"+dbName+"`"); err != nil {
		t.Fatalf("testinfra: creating database %s at %s: %v (is the infrastructure up? run scripts/infra up)", dbName, serverDSN, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		server, err := shard.OpenDB(serverDSN, TestPool())
		if err != nil {
			return
		}
		defer server.Close()
		_, _ = server.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+dbName+"`")
	})
	dsn := strings.TrimSuffix(serverDSN, "/") + "/" + dbName
	db, err := shard.OpenDB(dsn, TestPool())
	if err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	defer db.Close()
	if _, err := migrations.Up(ctx, db); err != nil {
		t.Fatalf("testinfra: migrating %s: %v", dsn, err)
	}
	return dsn
}

// OpenShards opens pools for a topology and closes them when the test ends.
func OpenShards(t testing.TB, topo shard.Topology) *shard.Pools {
	t.Helper()
	pools, err := shard.Open(topo, TestPool())
	if err != nil {
		t.Fatalf("testinfra: opening shards: %v", err)
	}
	t.Cleanup(func() { _ = pools.Close() })
	return pools
}

// DB opens one pool to a DSN for the test's own queries.
func DB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := shard.OpenDB(dsn, TestPool())
	if err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// Eventually polls cond every interval until it returns true or the timeout
// passes, and fails the test with msg then. Tests wait with it instead of
// sleeping.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: "+msg, append([]any{timeout}, args...)...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
