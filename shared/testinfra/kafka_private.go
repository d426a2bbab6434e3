package testinfra

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orderflow/orderflow/shared/kafkax"
)

// Kafka is a private single-node KRaft broker owned by one test, for tests
// that stop Kafka: the shared broker must stay up for the others. It runs the
// jars scripts/infra installed (ORDERFLOW_TEST_KAFKA_LIBS).
type Kafka struct {
	t       testing.TB
	dir     string
	port    int
	libs    string
	logPath string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// KafkaLibs is the directory of the Kafka jars.
func KafkaLibs() string { return stateLibs("ORDERFLOW_TEST_KAFKA_LIBS", "kafka") }

// stateLibs is the directory the variable names, or else the one
// scripts/infra installs into under the workspace's state directory.
func stateLibs(variable, component string) string {
	if v := os.Getenv(variable); v != "" {
		return v
	}
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return filepath.Join(dir, ".state", component, "libs")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// StartKafka formats a fresh broker in a temporary folder, starts it on free
// loopback ports, waits until it answers a metadata request, and stops it
// when the test ends.
func StartKafka(t testing.TB) *Kafka {
	t.Helper()
	Integration(t)
	libs := KafkaLibs()
	if _, err := os.Stat(filepath.Join(libs, ".stamp")); err != nil {
		t.Fatalf("testinfra: no Kafka jars at %s; run scripts/infra up, which installs them", libs)
	}
	dir := t.TempDir()
	k := &Kafka{t: t, dir: dir, port: freePort(t), libs: libs, logPath: filepath.Join(dir, "kafka.log")}
	controller := freePort(t)
	props := fmt.Sprintf(`process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:%[2]d
listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d
advertised.listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=%[3]s
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
`, k.port, controller, filepath.Join(dir, "data"))
	if err := os.WriteFile(filepath.Join(dir, "server.properties"), []byte(props), 0o644); err != nil {
		t.Fatal(err)
	}
	format := exec.Command("java", append(k.javaArgs(), "kafka.tools.StorageTool", "format", "--standalone",
		"-t", "testinfra-"+strconv.Itoa(k.port), "-c", filepath.Join(dir, "server.properties"))...)
	if out, err := format.CombinedOutput(); err != nil {
		t.Fatalf("testinfra: formatting private Kafka storage: %v\n%s", err, out)
	}
	t.Cleanup(k.Stop)
	k.Start()
	return k
}

func (k *Kafka) javaArgs() []string {
	return []string{"-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", filepath.Join(k.libs, "*")}
}

// Brokers is the broker's bootstrap address.
func (k *Kafka) Brokers() []string { return []string{"127.0.0.1:" + strconv.Itoa(k.port)} }

// Start starts the broker (again) and waits until it answers.
func (k *Kafka) Start() {
	k.t.Helper()
	k.mu.Lock()
	if k.cmd == nil {
		cmd, err := startLogged(k.logPath, "java", append(k.javaArgs(), "kafka.Kafka", filepath.Join(k.dir, "server.properties"))...)
		if err != nil {
			k.mu.Unlock()
			k.t.Fatalf("testinfra: starting private Kafka: %v", err)
		}
		k.cmd = cmd
	}
	k.mu.Unlock()
	if err := answersWithin(60*time.Second, func(ctx context.Context) error { return kafkax.Ping(ctx, k.Brokers()) }); err != nil {
		out, _ := os.ReadFile(k.logPath)
		k.t.Fatalf("testinfra: private Kafka did not answer within 60 s: %v\n%s", err, tail(out, 4000))
	}
}

// Stop shuts the broker down (SIGTERM) and waits for it to exit.
func (k *Kafka) Stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	endProcess(k.cmd, syscall.SIGTERM)
	k.cmd = nil
}
