package testinfra

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orderflow/orderflow/shared/mongox"
)

// MongoWire is a private MongoDB wire-protocol stand-in owned by one test,
// for tests that kill or restart the read store: the shared one must stay up
// for the others. It runs the launcher scripts/infra built
// (ORDERFLOW_TEST_MONGO_LIBS) with its documents in a file, as `make up` does.
type MongoWire struct {
	t       testing.TB
	port    int
	libs    string
	file    string
	logPath string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// StartMongoWire starts a stand-in on a free loopback port that keeps its
// documents in a file of a temporary folder, waits until it answers a ping,
// and stops it when the test ends.
func StartMongoWire(t testing.TB) *MongoWire {
	t.Helper()
	Integration(t)
	libs := stateLibs("ORDERFLOW_TEST_MONGO_LIBS", "mongo")
	if _, err := os.Stat(filepath.Join(libs, ".stamp")); err != nil {
		t.Fatalf("testinfra: no MongoDB stand-in at %s; run scripts/infra up, which builds it", libs)
	}
	dir := t.TempDir()
	m := &MongoWire{t: t, port: freePort(t), libs: libs, file: filepath.Join(dir, "orders.journal"), logPath: filepath.Join(dir, "mongo.log")}
	t.Cleanup(m.Stop)
	m.Start()
	return m
}

// URI is the server's connection string.
func (m *MongoWire) URI() string { return "mongodb://127.0.0.1:" + strconv.Itoa(m.port) }

// Connect returns a client of the server, disconnected when the test ends.
func (m *MongoWire) Connect() *mongo.Client {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := mongox.Connect(ctx, m.URI())
	if err != nil {
		m.t.Fatal(err)
	}
	m.t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

// Start starts the server (again, over the same file) and waits until it
// answers.
func (m *MongoWire) Start() {
	m.t.Helper()
	m.mu.Lock()
	if m.cmd == nil {
		cmd, err := startLogged(m.logPath, "java", "-Xms64m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
			"-cp", filepath.Join(m.libs, "*"), "dev.orderflow.mongo.MongoWireServer", "127.0.0.1", strconv.Itoa(m.port), "journal", m.file)
		if err != nil {
			m.mu.Unlock()
			m.t.Fatalf("testinfra: starting the MongoDB stand-in: %v", err)
		}
		m.cmd = cmd
	}
	m.mu.Unlock()
	err := answersWithin(60*time.Second, func(ctx context.Context) error {
		c, err := mongox.Connect(ctx, m.URI())
		if err != nil {
			return err
		}
		defer c.Disconnect(context.Background())
		return mongox.Ping(ctx, c)
	})
	if err != nil {
		out, _ := os.ReadFile(m.logPath)
		m.t.Fatalf("testinfra: the MongoDB stand-in did not answer within 60 s: %v\n%s", err, tail(out, 4000))
	}
}

// Kill ends the server with SIGKILL, as a crash would: nothing is flushed
// on the way out.
func (m *MongoWire) Kill() { m.end(syscall.SIGKILL) }

// Stop shuts the server down (SIGTERM) and waits for it to exit.
func (m *MongoWire) Stop() { m.end(syscall.SIGTERM) }

func (m *MongoWire) end(sig syscall.Signal) {
	m.mu.Lock()
	defer m.mu.Unlock()
	endProcess(m.cmd, sig)
	m.cmd = nil
}
