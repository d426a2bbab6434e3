package tests

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orderflow/orderflow/migrations"
	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/mongox"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// infraScript runs scripts/infra with its own state directory and ports, so
// it never touches the infrastructure the other tests use.
type infraScript struct {
	t     *testing.T
	root  string
	state string
	env   []string
}

func newInfraScript(t *testing.T, shards int) (*infraScript, []int) {
	base := testinfra.FreeRun(t, shards) // shard ports are consecutive
	other := testinfra.FreePorts(t, 4)
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	s := &infraScript{t: t, root: root, state: t.TempDir()}
	s.env = append(os.Environ(),
		"ORDERFLOW_STATE_DIR="+s.state, "SHARDS="+strconv.Itoa(shards), "SHARD_BASE_PORT="+strconv.Itoa(base),
		"KAFKA_PORT="+strconv.Itoa(other[0]), "KAFKA_CONTROLLER_PORT="+strconv.Itoa(other[1]),
		"MONGO_PORT="+strconv.Itoa(other[2]), "PROMETHEUS_PORT="+strconv.Itoa(other[3]), "KAFKA_PARTITIONS=3", "KAFKA_HEAP=512m", "MONGO_HEAP=256m", "MONGO_URI=")
	t.Cleanup(func() { _, _ = s.run("down") })
	return s, append([]int{base}, other...)
}

func (s *infraScript) run(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(s.root, "scripts", "infra"), args...)
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// processesUsing lists processes whose command line mentions the state dir.
func processesUsing(t *testing.T, dir string) []string {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	var found []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), dir) {
			found = append(found, e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return found
}

// scripts/infra with SHARDS=3 starts three MariaDB servers with the schema,
// a Kafka broker with the topics and a MongoDB-wire server; a second `up` is a
// no-op; `down` leaves no process behind.
func TestInfraScriptStartsAndStopsEverything(t *testing.T) {
	testinfra.Integration(t)
	t.Parallel()
	s, ports := newInfraScript(t, 3)
	if out, err := s.run("up"); err != nil {
		t.Fatalf("scripts/infra up: %v\n%s", err, out)
	}
	ctx := context.Background()
	latest, _ := migrations.Latest()
	for i := range 3 {
		db, err := shard.OpenDB("root@tcp(127.0.0.1:"+strconv.Itoa(ports[0]+i)+")/orderflow", testinfra.TestPool())
		if err != nil {
			t.Fatal(err)
		}
		var v int64
		err = db.QueryRowContext(ctx, "SELECT MAX(version_id) FROM "+migrations.VersionTable).Scan(&v)
		_ = db.Close()
		if err != nil || v != latest {
			t.Errorf("shard %d: schema version %d (%v), want %d", i, v, err, latest)
		}
	}
	kafka := "127.0.0.1:" + strconv.Itoa(ports[1])
	admin, err := sarama.NewClusterAdmin([]string{kafka}, kafkax.NewConfig("infra-script-test"))
	if err != nil {
		t.Fatal(err)
	}
	topics, err := admin.ListTopics()
	_ = admin.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{kafkax.TopicInternal, kafkax.TopicInternalDLQ, kafkax.TopicExternal} {
		if d, ok := topics[name]; !ok || d.NumPartitions != 3 {
			t.Errorf("topic %s: %+v (present %v), want 3 partitions", name, d, ok)
		}
	}
	// A document written now must still be there after down and up: the
	// stand-in keeps the read side in a file by default.
	mongoURI := "mongodb://127.0.0.1:" + strconv.Itoa(ports[3])
	withMongo(t, mongoURI, func(c *mongo.Collection) error {
		_, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: 42}, {Key: "version", Value: 3}})
		return err
	})

	// The stand-in's collector logs every pause, to check a slow second of
	// freshness against.
	gcLog := filepath.Join(s.state, "logs", "mongo-gc.log")
	testinfra.Eventually(t, 10*time.Second, func() bool {
		b, err := os.ReadFile(gcLog)
		return err == nil && strings.Contains(string(b), "Using G1")
	}, "the read store's GC log %s does not name its collector", gcLog)

	before := processesUsing(t, s.state)
	if len(before) < 5 {
		t.Errorf("expected 3 MariaDB, Kafka and MongoDB processes, found %d: %v", len(before), before)
	}
	if out, err := s.run("up"); err != nil || !strings.Contains(out, "warm up took") {
		t.Errorf("second up: %v\n%s", err, out)
	}
	if after := processesUsing(t, s.state); len(after) != len(before) {
		t.Errorf("a second up changed the processes: %d before, %d after", len(before), len(after))
	}
	s.checkServicesGOMAXPROCS()
	if out, err := s.run("down"); err != nil {
		t.Fatalf("scripts/infra down: %v\n%s", err, out)
	}
	testinfra.Eventually(t, 30*time.Second, func() bool { return len(processesUsing(t, s.state)) == 0 },
		"processes left after down: %v", processesUsing(t, s.state))

	if out, err := s.run("up"); err != nil {
		t.Fatalf("scripts/infra up after down: %v\n%s", err, out)
	}
	withMongo(t, mongoURI, func(c *mongo.Collection) error {
		var doc struct {
			Version int32 `bson:"version"`
		}
		if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: 42}}).Decode(&doc); err != nil {
			return fmt.Errorf("the document written before down and up: %w", err)
		}
		if doc.Version != 3 {
			return fmt.Errorf("the document came back at version %d, want 3", doc.Version)
		}
		return nil
	})
}

// checkServicesGOMAXPROCS starts order-query with scripts/services on this
// infrastructure and reads the environment the process got: one P
// (GOMAXPROCS=1) unless the caller sets GOMAXPROCS, which then wins. The
// services share two cores with MariaDB, Kafka and the read store; see
// "One P per service" in docs/performance.md.
func (s *infraScript) checkServicesGOMAXPROCS() {
	t := s.t
	offset := testinfra.FreeOffset(t, 8081, 9091) // order-query's REST and gRPC ports
	// The runner's own GOMAXPROCS would decide the default case.
	base := slices.DeleteFunc(slices.Clone(s.env), func(kv string) bool { return strings.HasPrefix(kv, "GOMAXPROCS=") })
	base = append(base, "SERVICES_PORT_OFFSET="+strconv.Itoa(offset))
	for _, tt := range []struct {
		name, caller, want string
	}{
		{name: "default", want: "GOMAXPROCS=1"},
		{name: "the caller's setting wins", caller: "GOMAXPROCS=2", want: "GOMAXPROCS=2"},
	} {
		env := slices.Clip(base)
		if tt.caller != "" {
			env = append(env, tt.caller)
		}
		services := func(args ...string) error {
			cmd := exec.Command(filepath.Join(s.root, "scripts", "services"), args...)
			cmd.Env = env
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("%s: scripts/services %s: %w\n%s", tt.name, strings.Join(args, " "), err, out)
			}
			return nil
		}
		// Stopped even when the test fails half-way: the service runs in a
		// session of its own, and scripts/infra down does not stop it.
		t.Cleanup(func() {
			if err := services("down", "order-query"); err != nil {
				t.Log(err)
			}
		})
		if err := services("up", "order-query"); err != nil {
			t.Fatal(err)
		}
		pid, err := os.ReadFile(filepath.Join(s.state, "run", "order-query.pid"))
		if err != nil {
			t.Fatal(err)
		}
		environ, err := os.ReadFile(filepath.Join("/proc", strings.TrimSpace(string(pid)), "environ"))
		if err != nil {
			t.Fatal(err)
		}
		if err := services("down", "order-query"); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, kv := range strings.Split(string(environ), "\x00") {
			if strings.HasPrefix(kv, "GOMAXPROCS=") {
				got = append(got, kv)
			}
		}
		if len(got) != 1 || got[0] != tt.want {
			t.Errorf("%s: order-query ran with %v, want %s", tt.name, got, tt.want)
		}
	}
}

// withMongo runs fn on a collection of the MongoDB at uri.
func withMongo(t *testing.T, uri string, fn func(*mongo.Collection) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := mongox.Connect(ctx, uri)
	if err != nil {
		t.Fatalf("mongo: %v", err)
	}
	defer client.Disconnect(context.Background())
	if err := fn(client.Database("infra_script").Collection("orders")); err != nil {
		t.Fatal(err)
	}
}

// A server that never answers makes up fail, naming the component and its log.
func TestInfraScriptNamesTheComponentThatIsNotReady(t *testing.T) {
	testinfra.Integration(t)
	t.Parallel()
	s, ports := newInfraScript(t, 1)
	// Something that is not MongoDB holds the Mongo port.
	squatter, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(ports[3]))
	if err != nil {
		t.Fatal(err)
	}
	defer squatter.Close()
	go func() {
		for {
			c, err := squatter.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	s.env = append(s.env, "READY_TIMEOUT=8s")
	out, err := s.run("up")
	if err == nil {
		t.Fatalf("scripts/infra up succeeded with the Mongo port taken:\n%s", out)
	}
	if !strings.Contains(out, "mongodb") || !strings.Contains(out, filepath.Join(s.state, "logs", "mongo.log")) {
		t.Errorf("the failure does not name MongoDB and its log:\n%s", out)
	}
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }
