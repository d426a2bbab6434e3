package cli_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/orderflow/orderflow/services/orderctl/internal/cli"
	"github.com/orderflow/orderflow/services/orderctl/internal/status"
	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/outbox"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// unreachablePrometheus is an address nothing listens on.
const unreachablePrometheus = "http://127.0.0.1:1"

// statusSystem is a test's own system as `orderctl status` sees it: shards,
// an internal topic with a consumer group, a DLQ topic and a read-side
// database.
type statusSystem struct {
	topo                   shard.Topology
	file                   string
	topic, group, dlqTopic string
	mongoDatabase          string
}

func newStatusSystem(t *testing.T, topo shard.Topology) *statusSystem {
	t.Helper()
	file := filepath.Join(t.TempDir(), "topology.json")
	if err := shard.WriteTopology(file, topo); err != nil {
		t.Fatal(err)
	}
	return &statusSystem{topo: topo, file: file, topic: testinfra.KafkaTopic(t, 3), group: testinfra.UniqueName(t, "group"),
		dlqTopic: testinfra.KafkaTopic(t, 1), mongoDatabase: testinfra.MongoDatabase(t).Name()}
}

// own makes the shard owned as a relay owns it: its named lock held on a
// connection of its own for the rest of the test, and the owner row.
func (s *statusSystem) own(t *testing.T, shardName, relayID string) {
	t.Helper()
	dsn, _ := s.topo.DSN(shardName)
	conn, err := testinfra.DB(t, dsn).Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	var got sql.NullInt64
	if err := conn.QueryRowContext(context.Background(), "SELECT GET_LOCK("+outbox.LockNameSQL+", 0)").Scan(&got); err != nil || got.Int64 != 1 {
		t.Fatalf("taking %s's relay lock: %v (%v)", shardName, got, err)
	}
	if _, err := conn.ExecContext(context.Background(), `INSERT INTO outbox_relay_owner (lock_name, relay_id, acquired_at, heartbeat_at)
		VALUES (`+outbox.LockNameSQL+`, ?, NOW(6), NOW(6))`, relayID); err != nil {
		t.Fatal(err)
	}
}

func (s *statusSystem) ownAll(t *testing.T) {
	for _, sh := range s.topo.Shards {
		s.own(t, sh.Name, "relay-test")
	}
}

// outboxRow writes an outbox row on a shard.
func (s *statusSystem) outboxRow(t *testing.T, shardName string, st outbox.Status, occurred time.Time) {
	t.Helper()
	dsn, _ := s.topo.DSN(shardName)
	if _, err := testinfra.DB(t, dsn).Exec(`INSERT INTO outbox (event_id, event_type, order_no, order_version, occurred_at, status, attempts, last_error)
		VALUES (UUID(), 'OrderPlaced', 2, 1, ?, ?, 10, 'kafka: message too large')`, occurred.UTC(), string(st)); err != nil {
		t.Fatal(err)
	}
}

// consume writes n messages to every partition of the topic and commits
// the group at committed messages behind the end of each.
func (s *statusSystem) consume(t *testing.T, n, behind int64) {
	t.Helper()
	client, err := sarama.NewClient(testinfra.KafkaBrokers(), kafkax.NewConfig("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	parts, err := client.Partitions(s.topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		var letters []deadLetter
		for range n {
			letters = append(letters, deadLetter{partition: p, key: "1", value: []byte("x")})
		}
		produce(t, s.topic, letters...)
	}
	om, err := sarama.NewOffsetManagerFromClient(s.group, client)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		pom, err := om.ManagePartition(s.topic, p)
		if err != nil {
			t.Fatal(err)
		}
		pom.MarkOffset(n-behind, "")
		pom.AsyncClose()
	}
	om.Commit()
	if err := om.Close(); err != nil {
		t.Fatal(err)
	}
}

// status runs `orderctl status --json` and decodes the report.
func (s *statusSystem) status(t *testing.T, prometheusURL string, extra ...string) (status.Report, error) {
	t.Helper()
	out, err := s.statusRaw(t, append([]string{"--json", "--prometheus", prometheusURL}, extra...)...)
	var r status.Report
	if jerr := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &r); jerr != nil {
		t.Fatalf("status --json printed no report (%v): %s", jerr, out)
	}
	return r, err
}

func (s *statusSystem) statusRaw(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return orderctl(t, append([]string{"status", "--topology", s.file, "--brokers", strings.Join(testinfra.KafkaBrokers(), ","),
		"--group", s.group, "--topic", s.topic, "--dlq-topic", s.dlqTopic, "--mongo", testinfra.MongoURI(),
		"--mongo-database", s.mongoDatabase}, args...)...)
}

// problem returns the report's problem of check about subject.
func problem(r status.Report, check, subject string) (status.Problem, bool) {
	for _, p := range r.Problems {
		if p.Check == check && p.Subject == subject {
			return p, true
		}
	}
	return status.Problem{}, false
}

// A healthy system: every shard reachable and owned, nothing failed or
// stale, the group caught up, no dead letter; Prometheus unreachable is
// said and is no problem. Exit 0, and the JSON carries every part.
func TestStatusHealthy(t *testing.T) {
	t.Parallel()
	s := newStatusSystem(t, testinfra.Shards(t, 2))
	s.ownAll(t)
	s.outboxRow(t, "shard-0", outbox.StatusPending, time.Now().Add(-2*time.Second))
	s.consume(t, 4, 0)

	r, err := s.status(t, unreachablePrometheus)
	if err != nil {
		t.Fatalf("status of a healthy system: %v (%+v)", err, r.Problems)
	}
	if !r.Healthy || len(r.Problems) != 0 {
		t.Errorf("healthy=%v problems=%+v", r.Healthy, r.Problems)
	}
	if len(r.Shards) != 2 {
		t.Fatalf("shards: %+v", r.Shards)
	}
	for _, sh := range r.Shards {
		if !sh.Reachable || sh.Owner != "relay-test" || sh.Failed != 0 || sh.Error != "" {
			t.Errorf("shard %+v, want reachable, owned by relay-test, nothing failed", sh)
		}
	}
	if sh := r.Shards[0]; sh.Pending != 1 || sh.OldestPendingAgeSeconds < 1 || sh.OldestPendingAgeSeconds > 30 {
		t.Errorf("shard-0: pending %d, oldest %.1fs; want 1 row about 2s old", sh.Pending, sh.OldestPendingAgeSeconds)
	}
	if len(r.ConsumerGroups) != 1 || len(r.ConsumerGroups[0].Topics) != 1 {
		t.Fatalf("consumer groups: %+v", r.ConsumerGroups)
	}
	if g := r.ConsumerGroups[0]; g.Group != s.group || g.Topics[0].Topic != s.topic || g.Topics[0].Partitions != 3 || g.Topics[0].Lag != 0 {
		t.Errorf("group %+v, want %s on %s, 3 partitions, lag 0", g, s.group, s.topic)
	}
	if r.DLQ.Topic != s.dlqTopic || r.DLQ.Unresolved != 0 || r.DLQ.Error != "" {
		t.Errorf("dlq %+v", r.DLQ)
	}
	if r.Prometheus.Reachable || r.Prometheus.Error == "" || r.Prometheus.URL != unreachablePrometheus {
		t.Errorf("prometheus %+v, want unreachable with its error", r.Prometheus)
	}
	if r.Thresholds.MaxPendingAgeSeconds != 30 || r.Thresholds.MaxLag != 1000 {
		t.Errorf("thresholds %+v, want the defaults", r.Thresholds)
	}

	// The text form: the verdict, the parts, and no colour off a terminal.
	out, err := s.statusRaw(t, "--prometheus", unreachablePrometheus)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"OK: nothing needs attention", "shard-1", "relay-test", s.group, "none open", "Prometheus unreachable"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("colour codes written to a non-terminal:\n%q", out)
	}
}

// Each kind of trouble makes status exit non-zero (an AttentionError, exit
// code 2) and names the problem.
func TestStatusNamesEachProblem(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// breakIt sets the trouble up on an otherwise healthy system.
		breakIt       func(t *testing.T, s *statusSystem)
		args          []string
		check, target func(s *statusSystem) string
		mention       string
	}{
		{
			name:    "failed outbox row",
			breakIt: func(t *testing.T, s *statusSystem) { s.outboxRow(t, "shard-1", outbox.StatusFailed, time.Now()) },
			check:   func(*statusSystem) string { return "outbox" }, target: func(*statusSystem) string { return "shard-1" },
			mention: "1 FAILED rows",
		},
		{
			name: "stale pending row",
			breakIt: func(t *testing.T, s *statusSystem) {
				s.outboxRow(t, "shard-0", outbox.StatusPending, time.Now().Add(-2*time.Minute))
			},
			check: func(*statusSystem) string { return "outbox" }, target: func(*statusSystem) string { return "shard-0" },
			mention: "oldest pending row is 2m",
		},
		{
			name: "lag above the threshold",
			breakIt: func(t *testing.T, s *statusSystem) {
				// 6 messages on each of 3 partitions, 2 consumed: 12 behind.
				s.consume(t, 5, 3)
			},
			args:  []string{"--max-lag", "8"},
			check: func(*statusSystem) string { return "consumer-lag" }, target: func(s *statusSystem) string { return s.group + "/" + s.topic },
			mention: "lag 12 messages (more than 8; worst partition 0: 4)",
		},
		{
			name: "unresolved dead letter",
			breakIt: func(t *testing.T, s *statusSystem) {
				produce(t, s.dlqTopic, deadLetter{key: "7", value: event(7, 1, "OrderPlaced"),
					headers: headers(kafkax.DLQReasonRetriesExhausted, "shard down", s.topic+"/0/3", "OrderPlaced", "ev-7-1", 7, time.Now())})
			},
			check: func(*statusSystem) string { return "dlq" }, target: func(s *statusSystem) string { return s.dlqTopic },
			mention: "1 dead letters not worked off",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStatusSystem(t, testinfra.Shards(t, 2))
			s.ownAll(t)
			s.consume(t, 1, 0)
			tc.breakIt(t, s)
			r, err := s.status(t, unreachablePrometheus, tc.args...)
			assertAttention(t, r, err, tc.check(s), tc.target(s), tc.mention)
			if len(r.Problems) != 1 {
				t.Errorf("problems %+v, want only the one set up", r.Problems)
			}
		})
	}
}

// A shard without a relay holding its lock is named, the other is not.
func TestStatusUnownedShard(t *testing.T) {
	t.Parallel()
	s := newStatusSystem(t, testinfra.Shards(t, 2))
	s.own(t, "shard-0", "relay-a")
	r, err := s.status(t, unreachablePrometheus)
	assertAttention(t, r, err, "outbox", "shard-1", "no relay owns the shard")
	if _, named := problem(r, "outbox", "shard-0"); named || r.Shards[0].Owner != "relay-a" || r.Shards[1].Owner != "" {
		t.Errorf("owners %+v, problems %+v", r.Shards, r.Problems)
	}
}

// A shard whose server was killed, or hangs, is reported unreachable
// within the check's deadline while the other shard is still read.
func TestStatusShardDownOrHung(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"killed", "hung"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			topo, private := testinfra.ShardsWithPrivate(t)
			s := newStatusSystem(t, topo)
			s.ownAll(t)
			if mode == "killed" {
				private.Kill()
			} else {
				private.Stop()
				t.Cleanup(private.Continue)
			}
			start := time.Now()
			r, err := s.status(t, unreachablePrometheus, "--timeout", "2s", "--ping-timeout", "1s")
			took := time.Since(start)
			t.Logf("status with shard-1 %s answered in %s", mode, took.Round(time.Millisecond))
			assertAttention(t, r, err, "shard", "shard-1", "unreachable")
			if took > 6*time.Second {
				t.Errorf("status took %s with shard-1 %s, want it bounded by its 2s checks", took, mode)
			}
			if sh := r.Shards[0]; !sh.Reachable || sh.Owner != "relay-test" {
				t.Errorf("the healthy shard: %+v", sh)
			}
			if sh := r.Shards[1]; sh.Reachable || sh.Error == "" {
				t.Errorf("the %s shard: %+v", mode, sh)
			}
		})
	}
}

// Kafka not answering fails the lag and the dead-letter checks within
// their deadline, each named; the shards are still read.
func TestStatusKafkaUnreachable(t *testing.T) {
	t.Parallel()
	s := newStatusSystem(t, testinfra.Shards(t, 2))
	s.ownAll(t)
	start := time.Now()
	r, err := s.status(t, unreachablePrometheus, "--brokers", "127.0.0.1:1", "--timeout", "2s")
	if took := time.Since(start); took > 6*time.Second {
		t.Errorf("status took %s with Kafka unreachable", took)
	}
	assertAttention(t, r, err, "consumer-lag", s.group, "lag not readable")
	assertAttention(t, r, err, "dlq", s.dlqTopic, "dead letters not readable")
	if len(r.Problems) != 2 || !r.Shards[0].Reachable || r.Shards[1].Owner != "relay-test" {
		t.Errorf("problems %+v, shards %+v: want only Kafka's two, shards read", r.Problems, r.Shards)
	}
}

// Against the real Prometheus: reachable, the freshness query answered,
// and the firing alerts reported are those Prometheus lists, each a
// problem.
func TestStatusPrometheus(t *testing.T) {
	t.Parallel()
	url := os.Getenv("ORDERFLOW_PROMETHEUS_URL")
	if url == "" {
		url = "http://127.0.0.1:9095"
	}
	s := newStatusSystem(t, testinfra.Shards(t, 2))
	s.ownAll(t)
	s.consume(t, 1, 0)
	var (
		r    status.Report
		err  error
		want []string
	)
	// Alerts change state while the test runs: compare with what
	// Prometheus lists right after, until both agree.
	testinfra.Eventually(t, 30*time.Second, func() bool {
		r, err = s.status(t, url)
		want = firingAlerts(t, url)
		var got []string
		for _, a := range r.Prometheus.FiringAlerts {
			got = append(got, a.Name+fmt.Sprint(a.Labels))
		}
		slices.Sort(got)
		return slices.Equal(got, want)
	}, "status's firing alerts never matched Prometheus's: %+v vs %v", r.Prometheus.FiringAlerts, want)
	if !r.Prometheus.Reachable || r.Prometheus.Error != "" || r.Prometheus.URL != url {
		t.Fatalf("prometheus %+v, want reachable", r.Prometheus)
	}
	if f := r.Prometheus.FreshnessP99Seconds; f != nil && (*f < 0 || *f > 120) {
		t.Errorf("freshness p99 %v s is not a latency", *f)
	}
	if len(want) == 0 {
		if err != nil || !r.Healthy {
			t.Errorf("no alert firing, yet: %v %+v", err, r.Problems)
		}
		return
	}
	for _, a := range r.Prometheus.FiringAlerts {
		assertAttention(t, r, err, "alert", a.Name, "firing")
	}
}

// firingAlerts lists the alerts Prometheus says fire, as name+labels.
func firingAlerts(t *testing.T, url string) []string {
	t.Helper()
	resp, err := http.Get(url + "/api/v1/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range body.Data.Alerts {
		if a.State == "firing" {
			out = append(out, a.Labels["alertname"]+fmt.Sprint(a.Labels))
		}
	}
	slices.Sort(out)
	return out
}

// assertAttention checks that status exited with an AttentionError and
// named the problem.
func assertAttention(t *testing.T, r status.Report, err error, check, subject, mention string) {
	t.Helper()
	var attention *cli.AttentionError
	if !errors.As(err, &attention) || attention.Code() == 0 {
		t.Errorf("status returned %v, want an AttentionError (non-zero exit)", err)
	}
	if r.Healthy {
		t.Errorf("report says healthy")
	}
	p, ok := problem(r, check, subject)
	if !ok {
		t.Fatalf("no %s problem about %s in %+v", check, subject, r.Problems)
	}
	if !strings.Contains(p.Message, mention) {
		t.Errorf("problem %q does not say %q", p.Message, mention)
	}
}
