// Command relaybench measures the outbox relay on this machine: how fast it
// drains a backlog of outbox rows to Kafka, the commit-to-ack latency under a
// steady order rate, and how much a running relay slows the order writers.
// It works on scratch databases and a scratch topic, and runs the real
// outbox-relay binary. With -peer it then has Watermill's SQL-to-Kafka
// forwarder (cmd/peerrelay) drain a backlog of the same size and shape on
// the same shards, and reports our drain rate as a multiple of the peer's.
//
//	go run ./loadtest/cmd/relaybench -topology .state/topology.json
package main

import (
	"context"
	"database/sql"
	"debug/buildinfo"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orderflow/orderflow/loadtest/internal/bench"
	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/orderenum"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/sqlrows"
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
	peer       bool
	peerBatch  int
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
	flag.BoolVar(&o.peer, "peer", true, "also drain the same backlog with Watermill's forwarder (cmd/peerrelay) and compare")
	flag.IntVar(&o.peerBatch, "peer-batch", 1000, "messages the peer reads per query (watermill-sql SubscribeBatchSize)")
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
	defer relay.Stop()
	drainStart := time.Now()
	for countPending(ctx, pools) > 0 {
		time.Sleep(100 * time.Millisecond)
	}
	drain := time.Since(drainStart)
	ourRate := float64(total) / drain.Seconds()
	results["drain"] = map[string]any{"rows": total, "seconds": drain.Seconds(), "rowsPerSecond": ourRate}

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

	var peer peerResult
	if o.peer {
		// Our relay drained with nothing else running; the peer gets the
		// same, so our relay stops before the peer's backlog is written.
		relay.Stop()
		say("peer drain: filling Watermill's forwarder table to %d rows per shard", o.backlog)
		peer, err = peerDrain(ctx, o, scratch, pools, brokers, &seq)
		if err != nil {
			return err
		}
		results["peer"] = peer
		results["ourToPeerRatio"] = ourRate / peer.RowsPerSecond
	}

	fmt.Printf("| measure | value |\n|---|---|\n")
	fmt.Printf("| backlog drained | %d rows in %.1f s = **%.0f rows/s** (%d shards, %d partitions) |\n", total, drain.Seconds(), ourRate, len(scratch.Shards), o.partitions)
	if o.peer {
		fmt.Printf("| same backlog, Watermill forwarder (batch %d) | %d rows in %.1f s = **%.0f rows/s** |\n", peer.SubscribeBatchSize, peer.Rows, peer.Seconds, peer.RowsPerSecond)
		fmt.Printf("| our drain rate / Watermill's | **%.2f×** |\n", ourRate/peer.RowsPerSecond)
	}
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
		lags, err := sqlrows.ScanAll(rows, func(rows *sql.Rows) (time.Duration, error) {
			var us sql.NullInt64
			err := rows.Scan(&us)
			return time.Duration(us.Int64) * time.Microsecond, err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, lags...)
	}
	return out, nil
}

// startRelay starts the outbox-relay binary over the scratch shards.
func startRelay(ctx context.Context, topo shard.Topology, topic, brokers string) (*bench.Process, error) {
	dir, err := os.MkdirTemp("", "relaybench-")
	if err != nil {
		return nil, err
	}
	data, _ := json.Marshal(topo)
	topoFile := filepath.Join(dir, "topology.json")
	if err := os.WriteFile(topoFile, data, 0o644); err != nil {
		return nil, err
	}
	httpAddr, grpcAddr := bench.FreeAddr(), bench.FreeAddr()
	return bench.StartProcess(ctx, dir, "./services/outbox-relay/cmd/outbox-relay", nil,
		[]string{"ORDERFLOW_TOPOLOGY_FILE=" + topoFile, "ORDERFLOW_RELAY_TOPIC=" + topic, "ORDERFLOW_KAFKA_BROKERS=" + brokers,
			"ORDERFLOW_ADMIN_TOKEN=relaybench-admin-token-0123456789abcdef", "ORDERFLOW_ADMIN_HTTP_ADDR=" + httpAddr, "ORDERFLOW_ADMIN_GRPC_ADDR=" + grpcAddr, "ORDERFLOW_LOG_LEVEL=warn"},
		"http://"+httpAddr+"/readyz")
}

// startPeer starts cmd/peerrelay (Watermill's forwarder) over the scratch
// shards.
func startPeer(ctx context.Context, topo shard.Topology, topic, sqlTopic, brokers string, batch int) (*bench.Process, error) {
	dir, err := os.MkdirTemp("", "relaybench-peer-")
	if err != nil {
		return nil, err
	}
	httpAddr := bench.FreeAddr()
	args := []string{"-brokers", brokers, "-topic", topic, "-sql-topic", sqlTopic, "-key-metadata", peerKeyMetadata,
		"-batch", strconv.Itoa(batch), "-http", httpAddr, "-log-level", "warn"}
	for _, s := range topo.Shards {
		args = append(args, "-dsn", s.DSN)
	}
	return bench.StartProcess(ctx, dir, "./loadtest/cmd/peerrelay", args, nil, "http://"+httpAddr+"/readyz")
}

// startProcess builds the main package pkg into dir, starts it with args and
// env added to ours, and waits until readyURL answers 200. The program gets
// a process group of its own, so that a Ctrl-C at the terminal reaches only
// the benchmark, which then stops the program in order.
// The peer's Kafka messages carry the order number in this metadata entry,
// which cmd/peerrelay makes the key, as our relay keys by order number.
const peerKeyMetadata = "order-no"

type peerResult struct {
	Rows               int               `json:"rows"`
	Seconds            float64           `json:"seconds"`
	RowsPerSecond      float64           `json:"rowsPerSecond"`
	SubscribeBatchSize int               `json:"subscribeBatchSize"`
	LibraryVersions    map[string]string `json:"libraryVersions"`
}

// peerDrain writes a backlog of o.backlog messages per shard to Watermill's
// forwarder table on the scratch shards (not timed), then runs cmd/peerrelay
// and times until all of them are in a scratch topic of their own.
func peerDrain(ctx context.Context, o options, topo shard.Topology, pools *shard.Pools, brokers []string, seq *atomic.Int64) (peerResult, error) {
	res := peerResult{SubscribeBatchSize: o.peerBatch}
	id := bench.RandomID()
	topic, sqlTopic := "relaybench-peer-"+id, "relaybench_forwarder_"+id
	if err := kafkax.CreateTopics(brokers, int32(o.partitions), 1, topic); err != nil {
		return res, err
	}
	defer func() { _ = kafkax.DeleteTopics(brokers, topic) }()
	for _, name := range topo.Names() {
		db, err := pools.DB(name)
		if err != nil {
			return res, err
		}
		if err := fillPeer(ctx, db, sqlTopic, topic, o.backlog, seq); err != nil {
			return res, fmt.Errorf("filling the forwarder table on %s: %w", name, err)
		}
	}
	res.Rows = o.backlog * len(topo.Names())

	client, err := sarama.NewClient(brokers, kafkax.NewConfig("relaybench"))
	if err != nil {
		return res, err
	}
	defer client.Close()
	partitions, err := client.Partitions(topic)
	if err != nil {
		return res, err
	}
	say("draining %d rows with Watermill's forwarder", res.Rows)
	peer, err := startPeer(ctx, topo, topic, sqlTopic, strings.Join(brokers, ","), o.peerBatch)
	if err != nil {
		return res, err
	}
	defer peer.Stop()
	res.LibraryVersions = libraryVersions(peer.Bin)
	start := time.Now()
	last, lastProgress := int64(0), start
	for last < int64(res.Rows) {
		time.Sleep(100 * time.Millisecond)
		n, err := messagesIn(client, topic, partitions)
		switch {
		case err != nil:
			return res, err
		case n > last:
			last, lastProgress = n, time.Now()
		case peer.Exited():
			return res, fmt.Errorf("peerrelay exited after %d of %d messages:\n%s", last, res.Rows, peer.Output())
		case time.Since(lastProgress) > time.Minute:
			return res, fmt.Errorf("peerrelay made no progress for a minute at %d of %d messages:\n%s", last, res.Rows, peer.Output())
		}
	}
	took := time.Since(start)
	res.Seconds, res.RowsPerSecond = took.Seconds(), float64(res.Rows)/took.Seconds()
	if last > int64(res.Rows) {
		// Redelivered messages count as arrived; the rate would flatter the peer.
		say("warning: %d messages in the peer's topic for %d rows (redeliveries); see %s", last, res.Rows, peer.Log)
	}
	return res, nil
}

// fillPeer writes n messages to the forwarder table through the forwarder's
// own publisher (which wraps each in an envelope naming topic), 1,000 per
// insert. Each message is what our relay sends for a drained outbox row: the
// same protobuf value, the event id and type as headers (Watermill carries
// the id as its message UUID), the order number as the key.
func fillPeer(ctx context.Context, db *sql.DB, sqlTopic, topic string, n int, seq *atomic.Int64) error {
	sqlPub, err := wsql.NewPublisher(wsql.BeginnerFromStdSQL(db),
		wsql.PublisherConfig{SchemaAdapter: wsql.DefaultMySQLSchema{}, AutoInitializeSchema: true}, nil)
	if err != nil {
		return err
	}
	pub := forwarder.NewPublisher(sqlPub, forwarder.PublisherConfig{ForwarderTopic: sqlTopic})
	defer pub.Close()
	now := time.Now().UTC()
	placed, _ := orderenum.EventTypeName(eventsv1.EventType_EVENT_TYPE_ORDER_PLACED)
	for have := 0; have < n; {
		msgs := make([]*message.Message, min(1000, n-have))
		for i := range msgs {
			no := seq.Add(1)
			eventID := fmt.Sprintf("fill-%d", no)
			value, err := proto.Marshal(&eventsv1.OrderEvent{EventId: eventID, EventType: placed, OrderNo: no,
				OrderVersion: 1, OccurredAt: timestamppb.New(now)})
			if err != nil {
				return err
			}
			msg := message.NewMessage(eventID, value)
			msg.Metadata.Set("event-type", placed)
			msg.Metadata.Set(peerKeyMetadata, strconv.FormatInt(no, 10))
			msg.SetContext(ctx)
			msgs[i] = msg
		}
		if err := pub.Publish(topic, msgs...); err != nil {
			return err
		}
		have += len(msgs)
	}
	return nil
}

// messagesIn sums the newest offsets of the topic's partitions: the messages
// it holds, as it started empty and nothing deletes from it.
func messagesIn(client sarama.Client, topic string, partitions []int32) (int64, error) {
	var n int64
	for _, p := range partitions {
		offset, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0, err
		}
		n += offset
	}
	return n, nil
}

// libraryVersions are the versions of the peer's libraries built into bin.
func libraryVersions(bin string) map[string]string {
	out := map[string]string{}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return out
	}
	for _, d := range info.Deps {
		if strings.HasPrefix(d.Path, "github.com/ThreeDotsLabs/") || d.Path == "github.com/IBM/sarama" {
			out[d.Path] = d.Version
		}
	}
	return out
}
