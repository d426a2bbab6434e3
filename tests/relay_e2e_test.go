package tests

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	stdhttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/sqlrows"
	"github.com/orderflow/orderflow/shared/testinfra"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds outbox-relay and orderctl once per test run.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := repoRoot()
		if err != nil {
			buildErr = err
			return
		}
		binDir, buildErr = os.MkdirTemp("", "orderflow-bin-")
		if buildErr != nil {
			return
		}
		for _, name := range []string{"order-command", "outbox-relay", "order-projector", "order-query", "orderctl"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, name), "./services/"+name+"/cmd/"+name)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("building %s: %v\n%s", name, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func writeTopology(t *testing.T, topo shard.Topology) string {
	t.Helper()
	data, err := json.Marshal(topo)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "topology.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// proc is a service process started by a test.
type proc struct {
	name string
	http string
	cmd  *exec.Cmd
	done chan struct{}
}

// startProc runs binary name with env (a service needs a JWK Set, e.g.
// testinfra.Auth's Env, or it refuses to start), waits until http/readyz answers 200,
// and stops it (SIGTERM) when the test ends, printing its log on failure.
func startProc(t *testing.T, name, http string, env ...string) *proc {
	t.Helper()
	p := &proc{name: name, http: http, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(binaries(t), name))
	p.cmd.Env = append(os.Environ(), env...)
	logFile, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			log, _ := os.ReadFile(logFile.Name())
			t.Logf("%s log:\n%s", name, tailBytes(log, 1500))
		}
	})
	testinfra.Eventually(t, 30*time.Second, func() bool {
		select {
		case <-p.done:
			log, _ := os.ReadFile(logFile.Name())
			t.Fatalf("%s exited at start:\n%s", name, log)
		default:
		}
		resp, err := stdhttp.Get("http://" + http + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == stdhttp.StatusOK
	}, "%s never became ready", name)
	return p
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// kill ends the process with SIGKILL, as a crash would.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func addr(t *testing.T) string {
	return "127.0.0.1:" + strconv.Itoa(testinfra.FreePorts(t, 1)[0])
}

// relayProc is an outbox-relay process.
type relayProc struct {
	*proc
	id string
}

func startRelayProc(t *testing.T, id, topologyFile, topic string, extra ...string) *relayProc {
	t.Helper()
	env := append([]string{
		"ORDERFLOW_RELAY_ID=" + id, "ORDERFLOW_TOPOLOGY_FILE=" + topologyFile, "ORDERFLOW_RELAY_TOPIC=" + topic,
		"ORDERFLOW_KAFKA_BROKERS=" + strings.Join(testinfra.KafkaBrokers(), ","), "ORDERFLOW_ADMIN_TOKEN=e2e-admin-token-0123456789abcdef",
		"ORDERFLOW_ADMIN_GRPC_ADDR=" + addr(t), "ORDERFLOW_RELAY_ACQUIRE_INTERVAL=500ms", "ORDERFLOW_RELAY_BATCH_SIZE=100",
		"ORDERFLOW_LOG_LEVEL=warn"}, extra...)
	http := addr(t)
	return &relayProc{proc: startProc(t, "outbox-relay", http, append(env, "ORDERFLOW_ADMIN_HTTP_ADDR="+http)...), id: id}
}

func tailBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// owners maps each shard to the relay that holds its lock ("" for none).
func owners(t *testing.T, topo shard.Topology) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, s := range topo.Shards {
		var owner string
		err := testinfra.DB(t, s.DSN).QueryRow(`SELECT relay_id FROM outbox_relay_owner
			WHERE lock_name = CONCAT('orderflow_relay:', DATABASE()) AND IS_USED_LOCK(lock_name) IS NOT NULL`).Scan(&owner)
		if err == nil {
			out[s.Name] = owner
		}
	}
	return out
}

func insertEvents(t *testing.T, dsn string, firstOrder int64, n int) []string {
	t.Helper()
	db := testinfra.DB(t, dsn)
	ids := make([]string, n)
	for i := range n {
		ids[i] = uuid.NewString()
		if _, err := db.Exec(`INSERT INTO outbox (event_id, event_type, order_no, order_version, occurred_at) VALUES (?, 'OrderPlaced', ?, 1, ?)`,
			ids[i], firstOrder+int64(i), time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func countWhere(t *testing.T, topo shard.Topology, where string) int {
	t.Helper()
	total := 0
	for _, s := range topo.Shards {
		var n int
		if err := testinfra.DB(t, s.DSN).QueryRow("SELECT COUNT(*) FROM outbox WHERE " + where).Scan(&n); err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}

// eventCounter counts how often each event id arrives on a topic.
type eventCounter struct {
	mu   sync.Mutex
	seen map[string]int
}

func countEvents(t *testing.T, topic string) *eventCounter {
	t.Helper()
	cfg := kafkax.NewConfig("e2e")
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	group, err := sarama.NewConsumerGroup(testinfra.KafkaBrokers(), testinfra.UniqueName(t, "g"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &eventCounter{seen: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			_ = group.Consume(ctx, []string{topic}, c)
		}
	}()
	t.Cleanup(func() { cancel(); <-done; _ = group.Close() })
	return c
}

func (c *eventCounter) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (c *eventCounter) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (c *eventCounter) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		var ev eventsv1.OrderEvent
		if err := proto.Unmarshal(msg.Value, &ev); err == nil {
			c.mu.Lock()
			c.seen[ev.GetEventId()]++
			c.mu.Unlock()
		}
		s.MarkMessage(msg, "")
	}
	return nil
}

func (c *eventCounter) stats(ids []string) (missing, duplicates int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		switch n := c.seen[id]; {
		case n == 0:
			missing++
		case n > 1:
			duplicates += n - 1
		}
	}
	return missing, duplicates
}

// Two relays share the shards, one per shard at a time; SIGKILL one in the
// middle of its work and the other takes its shards over within 10 s. No
// event is lost; duplicates are at most one batch per shard.
func TestRelayFailOverAfterKill(t *testing.T) {
	testinfra.Integration(t)
	t.Parallel()
	topo := testinfra.Shards(t, 2)
	topic := testinfra.KafkaTopic(t, 6)
	file := writeTopology(t, topo)
	counter := countEvents(t, topic)
	keys := testinfra.NewAuth(t).Env()
	a := startRelayProc(t, "relay-a", file, topic, keys...)
	b := startRelayProc(t, "relay-b", file, topic, keys...)
	testinfra.Eventually(t, 15*time.Second, func() bool { return len(owners(t, topo)) == 2 }, "shards not owned: %v", owners(t, topo))

	var ids []string
	var mu sync.Mutex
	stop := make(chan struct{})
	var writers sync.WaitGroup
	for i, s := range topo.Shards {
		writers.Go(func() {
			for round := 0; ; round++ {
				select {
				case <-stop:
					return
				default:
				}
				got := insertEvents(t, s.DSN, int64(i*10_000_000+round*100), 100)
				mu.Lock()
				ids = append(ids, got...)
				mu.Unlock()
			}
		})
	}
	testinfra.Eventually(t, 30*time.Second, func() bool { return countWhere(t, topo, "status = 'PUBLISHED'") > 1000 },
		"nothing published before the kill")

	victim, survivor := a, b
	for _, owner := range owners(t, topo) {
		if owner == b.id {
			victim, survivor = b, a
			break
		}
	}
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	testinfra.Eventually(t, 10*time.Second, func() bool {
		o := owners(t, topo)
		return o["shard-0"] == survivor.id && o["shard-1"] == survivor.id
	}, "%s did not take over within 10 s: %v", survivor.id, owners(t, topo))
	t.Logf("%s took over %.1f s after %s was killed", survivor.id, time.Since(killed).Seconds(), victim.id)

	close(stop)
	writers.Wait()
	testinfra.Eventually(t, 60*time.Second, func() bool { return countWhere(t, topo, "status <> 'PUBLISHED'") == 0 },
		"%d rows not published", countWhere(t, topo, "status <> 'PUBLISHED'"))
	var missing, dups int
	testinfra.Eventually(t, 60*time.Second, func() bool {
		missing, dups = counter.stats(ids)
		return missing == 0
	}, "%d of %d events never reached Kafka", missing, len(ids))
	t.Logf("%d events, %d duplicates after the kill", len(ids), dups)
	if dups > 2*100 {
		t.Errorf("%d duplicates, want at most one batch (100) per shard", dups)
	}
}

// A topic whose max.message.bytes is too small refuses every message: rows
// are parked as FAILED after their attempts. The operator fixes the topic,
// looks with stats, list and show, checks with a dry run, and replays with
// orderctl; the rows are then delivered, and the replay audited.
func TestOperatorReplaysFailedRowsWithOrderctl(t *testing.T) {
	testinfra.Integration(t)
	t.Parallel()
	topo := testinfra.Shards(t, 2)
	topic := testinfra.UniqueName(t, "small")
	admin, err := sarama.NewClusterAdmin(testinfra.KafkaBrokers(), kafkax.NewConfig("e2e-admin"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	tooSmall, fixed := "100", "1048588"
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"max.message.bytes": &tooSmall}}, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kafkax.DeleteTopics(testinfra.KafkaBrokers(), topic) })
	counter := countEvents(t, topic)
	file := writeTopology(t, topo)
	startRelayProc(t, "relay-replay", file, topic, append(testinfra.NewAuth(t).Env(), "ORDERFLOW_RELAY_MAX_ATTEMPTS=2", "ORDERFLOW_RELAY_RETRY_BASE=50ms")...)
	ids := append(insertEvents(t, topo.Shards[0].DSN, 1, 20), insertEvents(t, topo.Shards[1].DSN, 1000, 15)...)
	testinfra.Eventually(t, 60*time.Second, func() bool { return countWhere(t, topo, "status = 'FAILED'") == len(ids) },
		"%d of %d rows FAILED", countWhere(t, topo, "status = 'FAILED'"), len(ids))

	orderctl := func(args ...string) (string, string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(binaries(t), "orderctl"), append([]string{"outbox"}, append(args, "--topology", file)...)...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("orderctl outbox %v: %v\n%s%s", args, err, stdout.String(), stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	stats, _ := orderctl("stats")
	if !strings.Contains(stats, "shard-0") || !regexpMatch(`shard-0\s+0\s+0\s+20\s`, stats) || !regexpMatch(`shard-1\s+0\s+0\s+15\s`, stats) {
		t.Errorf("stats:\n%s", stats)
	}
	list, more := orderctl("list", "--status", "FAILED", "--page-size", "25")
	if strings.Count(list, "FAILED") != 25 || !strings.Contains(more, "--page-token") {
		t.Errorf("list page 1:\n%s%s", list, more)
	}
	token := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(more), "more: --page-token"))
	list2, more2 := orderctl("list", "--status", "FAILED", "--page-size", "25", "--page-token", token)
	if strings.Count(list2, "FAILED") != 10 || more2 != "" {
		t.Errorf("list page 2:\n%s%s", list2, more2)
	}
	show, _ := orderctl("show", "shard-0", "1")
	if !strings.Contains(show, "status:         FAILED") || !strings.Contains(show, "attempts:       2") {
		t.Errorf("show:\n%s", show)
	}

	if err := admin.AlterConfig(sarama.TopicResource, topic, map[string]*string{"max.message.bytes": &fixed}, false); err != nil {
		t.Fatal(err)
	}

	dry, _ := orderctl("replay", "--dry-run", "--reason", "topic created")
	if !strings.Contains(dry, "total: would replay 35") {
		t.Errorf("dry run:\n%s", dry)
	}
	if n := countWhere(t, topo, "status = 'FAILED'"); n != len(ids) {
		t.Fatalf("the dry run changed rows: %d FAILED", n)
	}
	out, progress := orderctl("replay", "--reason", "topic created", "--actor", "oncall")
	if !strings.Contains(out, "total: replayed 35") || !strings.Contains(progress, "shard-0: 20/20 replayed") {
		t.Errorf("replay:\n%s%s", out, progress)
	}
	var missing int
	testinfra.Eventually(t, 60*time.Second, func() bool {
		missing, _ = counter.stats(ids)
		return missing == 0 && countWhere(t, topo, "status = 'PUBLISHED'") == len(ids)
	}, "%d events missing after the replay; rows by status: %v", missing, statusCounts(t, topo))
	var actor, reason string
	var rows int
	if err := testinfra.DB(t, topo.Shards[1].DSN).QueryRow("SELECT actor, reason, row_count FROM outbox_replay_audit").Scan(&actor, &reason, &rows); err != nil ||
		actor != "oncall" || reason != "topic created" || rows != 15 {
		t.Errorf("audit on shard-1: %q %q %d (%v)", actor, reason, rows, err)
	}
}

func statusCounts(t *testing.T, topo shard.Topology) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, s := range topo.Shards {
		rows, err := testinfra.DB(t, s.DSN).Query("SELECT CONCAT(status, ' attempts=', attempts, ' ', COALESCE(last_error, '')), COUNT(*) FROM outbox GROUP BY 1")
		if err != nil {
			t.Fatal(err)
		}
		type group struct {
			k string
			n int
		}
		groups, err := sqlrows.ScanAll(rows, func(rows *sql.Rows) (group, error) {
			var g group
			err := rows.Scan(&g.k, &g.n)
			return g, err
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range groups {
			out[s.Name+": "+g.k] += g.n
		}
	}
	return out
}
