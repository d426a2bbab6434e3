// Command relaybench measures the outbox relay on this machine: how fast it
// drains a backlog of outbox rows to Kafka, the commit-to-ack latency under a
// steady order rate, and how much a running relay slows the order writers.
// It works on scratch databases and a scratch topic, and runs the real
// outbox-relay binary.
//
//	go run ./loadtest/cmd/relaybench -topology .state/topology.json
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/orderflow/orderflow/loadtest/internal/bench"
	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/shard"
)

type options struct {
	topology   string
	brokers    string
	backlog    int
	rate       int
	steady     time.Duration
	writers    int
	writerTime time.Duration
	partitions int
	out        string
}

func main() {
	var o options
	flag.StringVar(&o.topology, "topology", ".state/topology.json", "topology of the shard servers to use")
	flag.StringVar(&o.brokers, "brokers", "127.0.0.1:19092", "Kafka bootstrap servers")
	flag.IntVar(&o.backlog, "backlog", 100000, "outbox rows per shard for the drain phase")
	flag.IntVar(&o.rate, "rate", 1000, "orders per second in the steady phase")
	flag.DurationVar(&o.steady, "steady", 30*time.Second, "length of the steady phase")
	flag.IntVar(&o.writers, "writers", 16, "concurrent writers in the writer-impact phases")
	flag.DurationVar(&o.writerTime, "writer-time", 10*time.Second, "length of each writer-impact phase")
	flag.IntVar(&o.partitions, "partitions", 12, "partitions of the scratch topic")
	flag.StringVar(&o.out, "out", "", "write the results as JSON here too")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "relaybench:", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) { fmt.Fprintf(os.Stderr, "relaybench: "+format+"\n", args...) }

func run(ctx context.Context, o options) error {
	topo, err := shard.LoadTopology(o.topology)
	if err != nil {
		return err
	}
	scratch, cleanup, err := bench.Scratch(ctx, topo, "orderflow_relaybench")
	defer cleanup()
	if err != nil {
		return err
	}
	pools, err := shard.Open(scratch, bench.Pool)
	if err != nil {
		return err
	}
	defer pools.Close()
	brokers := strings.Split(o.brokers, ",")
	topic := "relaybench-" + bench.RandomID()
	if err := kafkax.CreateTopics(brokers, int32(o.partitions), 1, topic); err != nil {
		return err
	}
	defer func() { _ = kafkax.DeleteTopics(brokers, topic) }()
	place := bench.PlaceTx(pools)
	var seq atomic.Int64
	results := map[string]any{"machine": bench.Machine(), "shards": len(scratch.Shards), "topic_partitions": o.partitions}

	say("writers alone: %d writers, %s", o.writers, o.writerTime)
	alone := bench.Measure(ctx, "writers, no relay", o.writers, 2*time.Second, o.writerTime, &seq, place)

	say("filling the outbox to %d rows per shard", o.backlog)
	for _, s := range scratch.Shards {
		if err := fill(ctx, pools, s.Name, o.backlog, &seq); err != nil {
			return err
		}
	}
	total := countPending(ctx, pools)
	say("draining %d rows with the relay", total)
	relay, err := startRelay(ctx, scratch, topic, o.brokers)
	if err != nil {
		return err
	}
	defer relay.stop()
	drainStart := time.Now()
	for countPending(ctx, pools) > 0 {
		time.Sleep(100 * time.Millisecond)
	}
	drain := time.Since(drainStart)
	results["drain"] = map[string]any{"rows": total, "seconds": drain.Seconds(), "rowsPerSecond": float64(total) / drain.Seconds()}

	say("steady: %d orders/s for %s with the relay running", o.rate, o.steady)
	steadyStart := time.Now().UTC()
	failed := bench.Paced(ctx, o.rate, o.steady, &seq, place)
	for countPending(ctx, pools) > 0 {
		time.Sleep(100 * time.Millisecond)
	}
	lat, err := commitToAck(ctx, pools, steadyStart)
	if err != nil {
		return err
	}
	steady := bench.Summarise("commit-to-ack at steady rate", lat, o.steady)
	steady.Errors = failed

	say("writers with the relay relaying their rows: %d writers, %s", o.writers, o.writerTime)
	with := bench.Measure(ctx, "writers, relay running", o.writers, 2*time.Second, o.writerTime, &seq, place)
	results["writers"] = []bench.Result{alone, with}
	results["steady"] = steady
	results["rate"] = o.rate

	fmt.Printf("| measure | value |\n|---|---|\n")
	fmt.Printf("| backlog drained | %d rows in %.1f s = **%.0f rows/s** (%d shards, %d partitions) |\n", total, drain.Seconds(), float64(total)/drain.Seconds(), len(scratch.Shards), o.partitions)
	fmt.Printf("| commit-to-ack at %d orders/s | p50 %.1f ms, **p99 %.1f ms** (%d events, %d write errors) |\n", o.rate, steady.P50Ms, steady.P99Ms, steady.Ops, failed)
	fmt.Printf("| writers alone (%d) | %.0f tx/s, p99 %.1f ms |\n", o.writers, alone.PerSecond, alone.P99Ms)
	fmt.Printf("| writers with the relay running | %.0f tx/s, p99 %.1f ms (**%.0f %%** of alone) |\n", with.PerSecond, with.P99Ms, 100*with.PerSecond/alone.PerSecond)
	if o.out != "" {
		data, _ := json.MarshalIndent(results, "", "  ")
		return os.WriteFile(o.out, data, 0o644)
	}
	return nil
}

// fill inserts outbox rows (1,000 per statement) until the shard has n.
func fill(ctx context.Context, pools *shard.Pools, name string, n int, seq *atomic.Int64) error {
	db, err := pools.DB(name)
	if err != nil {
		return err
	}
	var have int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM outbox").Scan(&have); err != nil {
		return err
	}
	now := time.Now().UTC()
	for have < n {
		chunk := min(1000, n-have)
		var q strings.Builder
		q.WriteString("INSERT INTO outbox (event_id, event_type, order_no, order_version, occurred_at) VALUES ")
		args := make([]any, 0, chunk*3)
		for i := range chunk {
			if i > 0 {
				q.WriteString(",")
			}
			q.WriteString("(?, 'OrderPlaced', ?, 1, ?)")
			no := seq.Add(1)
			args = append(args, fmt.Sprintf("fill-%d", no), no, now)
		}
		if _, err := db.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
		have += chunk
	}
	return nil
}

func countPending(ctx context.Context, pools *shard.Pools) int {
	total := 0
	for _, name := range pools.Topology().Names() {
		db, _ := pools.DB(name)
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM outbox WHERE status = 'PENDING'").Scan(&n); err != nil {
			return -1
		}
		total += n
	}
	return total
}

// commitToAck reads published_at - occurred_at of every row written since.
func commitToAck(ctx context.Context, pools *shard.Pools, since time.Time) ([]time.Duration, error) {
	var out []time.Duration
	for _, name := range pools.Topology().Names() {
		db, _ := pools.DB(name)
		rows, err := db.QueryContext(ctx, "SELECT TIMESTAMPDIFF(MICROSECOND, occurred_at, published_at) FROM outbox WHERE occurred_at >= ? AND status = 'PUBLISHED'", since)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var us sql.NullInt64
			if err := rows.Scan(&us); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, time.Duration(us.Int64)*time.Microsecond)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

type relayProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startRelay builds and starts the outbox-relay binary over the scratch
// shards and waits until it is ready.
func startRelay(ctx context.Context, topo shard.Topology, topic, brokers string) (*relayProcess, error) {
	dir, err := os.MkdirTemp("", "relaybench-")
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "outbox-relay")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./services/outbox-relay/cmd/outbox-relay")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building outbox-relay (run from the repository root): %v\n%s", err, out)
	}
	data, _ := json.Marshal(topo)
	topoFile := filepath.Join(dir, "topology.json")
	if err := os.WriteFile(topoFile, data, 0o644); err != nil {
		return nil, err
	}
	httpAddr, grpcAddr := bench.FreeAddr(), bench.FreeAddr()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "ORDERFLOW_TOPOLOGY_FILE="+topoFile, "ORDERFLOW_RELAY_TOPIC="+topic, "ORDERFLOW_KAFKA_BROKERS="+brokers,
		"ORDERFLOW_ADMIN_TOKEN=bench", "ORDERFLOW_ADMIN_HTTP_ADDR="+httpAddr, "ORDERFLOW_ADMIN_GRPC_ADDR="+grpcAddr, "ORDERFLOW_LOG_LEVEL=warn")
	logFile, _ := os.Create(filepath.Join(dir, "relay.log"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &relayProcess{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			p.stop()
			log, _ := os.ReadFile(logFile.Name())
			return nil, fmt.Errorf("relay not ready within 30 s:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *relayProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
	}
}
