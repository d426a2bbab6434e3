// Command freshbench measures the read side on the running system (make up):
// end-to-end freshness — from PlaceOrder's response to the order being
// visible through the query API — at fixed order rates, and the projector's
// maximum events per second when it works through a backlog.
//
//	go run ./loadtest/cmd/freshbench
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/orderflow/orderflow/loadtest/internal/bench"
	"github.com/orderflow/orderflow/loadtest/internal/orderapi"
	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/mongox"
	"github.com/orderflow/orderflow/shared/testinfra"
)

type options struct {
	command, query string
	// over is "rest" or "grpc": the API the orders are placed and read over.
	over                   string
	commandGRPC, queryGRPC string
	// authKey signs each user's token (orderapi.Tokens).
	authKey  string
	rates    string
	duration time.Duration
	topology string
	brokers  string
	topic    string
	mongoURI string
	backlog  bool
	// readEvery reads back every n-th order (1: all of them).
	readEvery int
	// backlogEvents bounds the backlog: the newest this many events of the
	// topic (the MongoDB stand-in keeps every document on its heap, and the
	// whole topic after a full benchmark run is millions of events).
	backlogEvents int64
	rawTime       time.Duration
	pipeline      bench.Pipeline
	out           string
}

func main() {
	var o options
	flag.StringVar(&o.command, "command", "http://127.0.0.1:8080", "order-command REST base URL (several comma-separated: calls spread round-robin)")
	flag.StringVar(&o.query, "query", "http://127.0.0.1:8081", "order-query REST base URL (several comma-separated: calls spread round-robin)")
	flag.StringVar(&o.over, "over", "rest", "API to place and read over: rest or grpc")
	flag.StringVar(&o.commandGRPC, "command-grpc", "127.0.0.1:9090", "order-command gRPC address (several comma-separated: calls spread round-robin)")
	flag.StringVar(&o.authKey, "auth-key", orderapi.DefaultKeyFile, orderapi.KeyFlagUsage)
	flag.StringVar(&o.queryGRPC, "query-grpc", "127.0.0.1:9091", "order-query gRPC address (several comma-separated: calls spread round-robin)")
	flag.StringVar(&o.rates, "rates", "200,500,1000", "orders per second, one phase each")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "length of each phase")
	flag.StringVar(&o.topology, "topology", ".state/topology.json", "topology file (for the backlog projector)")
	flag.StringVar(&o.brokers, "brokers", "127.0.0.1:19092", "Kafka bootstrap servers")
	flag.StringVar(&o.topic, "topic", kafkax.TopicInternal, "internal events topic (the backlog)")
	flag.StringVar(&o.mongoURI, "mongo", "mongodb://127.0.0.1:27017", "MongoDB URI")
	flag.StringVar(&o.pipeline.RelayMetrics, "relay-metrics", "127.0.0.1:8082", "outbox-relay HTTP address (/metrics)")
	flag.StringVar(&o.pipeline.ProjectorMetrics, "projector-metrics", "127.0.0.1:8083", "order-projector HTTP address (/metrics)")
	flag.IntVar(&o.readEvery, "read-every", 1, "read back every n-th order only: a sampled probe, so that the reads do not load the machine the way the orders do")
	flag.Int64Var(&o.backlogEvents, "backlog-events", 200_000, "the backlog projector's share: the newest this many events of the topic")
	flag.DurationVar(&o.rawTime, "raw", 10*time.Second, "measure the raw write limit for this long first (0: skip)")
	flag.BoolVar(&o.backlog, "backlog", true, "also time a second projector working through the whole topic")
	flag.StringVar(&o.out, "out", "", "write the results as JSON here too")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "freshbench:", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) { fmt.Fprintf(os.Stderr, "freshbench: "+format+"\n", args...) }

type phase struct {
	Rate      int          `json:"rate"`
	Achieved  float64      `json:"achievedPerSecond"`
	Place     bench.Result `json:"place"`
	Freshness bench.Result `json:"freshness"`
	Stale     int          `json:"stale"`
	Errors    int          `json:"errors"`
}

func run(ctx context.Context, o options) error {
	tokens, err := orderapi.Tokens(o.authKey)
	if err != nil {
		return err
	}
	api, err := orderapi.New(orderapi.Endpoints{Over: o.over, CommandREST: o.command, QueryREST: o.query,
		CommandGRPC: o.commandGRPC, QueryGRPC: o.queryGRPC, Tokens: tokens})
	if err != nil {
		return err
	}
	defer api.Close()
	if o.readEvery < 1 {
		return fmt.Errorf("-read-every must be at least 1, got %d", o.readEvery)
	}
	var raw *bench.Result
	if o.rawTime > 0 {
		say("raw limit: the PlaceOrder transaction straight to scratch databases, 32 clients, %s", o.rawTime)
		r, err := bench.RawLimitOf(ctx, o.topology, o.rawTime)
		if err != nil {
			return err
		}
		raw = &r
	}
	runID := bench.RandomID()
	var phases []phase
	for _, r := range strings.Split(o.rates, ",") {
		rate, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || rate < 1 {
			return fmt.Errorf("bad rate %q", r)
		}
		say("%d orders/s for %s", rate, o.duration)
		phases = append(phases, measure(ctx, api, o, rate, runID))
		if took, ok := o.pipeline.WaitDrained(ctx, 10*time.Minute); !ok {
			say("the relay and the projector did not catch up within %s", took.Round(time.Second))
		}
	}
	var backlog backlogResult
	if o.backlog {
		say("projector from a backlog")
		if backlog, err = projectorBacklog(ctx, o); err != nil {
			return err
		}
	}

	if raw != nil {
		fmt.Printf("raw write limit (same run): %.0f tx/s\n\n", raw.PerSecond)
	}
	fmt.Printf("over %s, %s read back\n\n| orders/s asked (achieved) | place p50 / p99 | freshness p50 / p99 | stale (> wait) | errors |\n|---|---|---|---|---|\n", o.over, probe(o.readEvery))
	for _, p := range phases {
		fmt.Printf("| %d (%.0f) | %.1f / %.1f ms | %.1f / **%.1f ms** | %d | %d |\n", p.Rate, p.Achieved, p.Place.P50Ms, p.Place.P99Ms,
			p.Freshness.P50Ms, p.Freshness.P99Ms, p.Stale, p.Errors)
	}
	if o.backlog {
		fmt.Printf("\nprojector from a backlog: %d events in %.1f s = **%.0f events/s**\n", backlog.Events, backlog.Seconds, backlog.PerSecond)
	}
	if o.out != "" {
		data, _ := json.MarshalIndent(map[string]any{"machine": bench.Machine(), "over": o.over, "readEvery": o.readEvery, "raw": raw, "phases": phases, "backlog": backlog}, "", "  ")
		return os.WriteFile(o.out, data, 0o644)
	}
	return nil
}

// probe says which orders are read back.
func probe(every int) string {
	if every == 1 {
		return "every order"
	}
	return fmt.Sprintf("every %d-th order", every)
}

// measure places rate orders a second for o.duration (open loop) and, after
// the response of every o.readEvery-th, asks the query API for the order
// with minVersion=1, which waits server-side until the projector wrote it.
func measure(ctx context.Context, api orderapi.Client, o options, rate int, runID string) phase {
	var mu sync.Mutex
	var place, fresh []time.Duration
	var stale, errs atomic.Int64
	var seq atomic.Int64
	start := time.Now()
	bench.Paced(ctx, rate, o.duration, &seq, func(ctx context.Context, i int64) error {
		t0 := time.Now()
		no, err := api.Place(ctx, fmt.Sprintf("fresh-%s-%d-%d", runID, rate, i), i)
		placed := time.Now()
		if err != nil {
			errs.Add(1)
			return err
		}
		probed := i%int64(o.readEvery) == 0
		var seen time.Time
		if probed {
			visible, err := api.Read(ctx, no, 1)
			seen = time.Now()
			switch {
			case err != nil:
				errs.Add(1)
				return err
			case !visible:
				stale.Add(1)
			}
		}
		mu.Lock()
		place = append(place, placed.Sub(t0))
		if probed {
			fresh = append(fresh, seen.Sub(placed))
		}
		mu.Unlock()
		return nil
	})
	elapsed := time.Since(start)
	return phase{Rate: rate, Achieved: float64(len(place)) / elapsed.Seconds(),
		Place: bench.Summarise("place", place, o.duration), Freshness: bench.Summarise("freshness", fresh, o.duration),
		Stale: int(stale.Load()), Errors: int(errs.Load())}
}

// commitBacklogStart commits group's offsets at the newest events of topic
// (about events of them, spread over its partitions), so that a consumer
// joining the group starts there, and returns how many events follow.
func commitBacklogStart(brokers []string, group, topic string, events int64) (int64, error) {
	client, err := sarama.NewClient(brokers, kafkax.NewConfig("freshbench"))
	if err != nil {
		return 0, err
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		return 0, err
	}
	offsets, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		return 0, err
	}
	perPartition := (events + int64(len(parts)) - 1) / int64(len(parts))
	var total int64
	var poms []sarama.PartitionOffsetManager
	startAt := map[int32]int64{}
	for _, p := range parts {
		newest, err1 := client.GetOffset(topic, p, sarama.OffsetNewest)
		oldest, err2 := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err := errors.Join(err1, err2); err != nil {
			return 0, fmt.Errorf("offsets: %w", err)
		}
		pom, err := offsets.ManagePartition(topic, p)
		if err != nil {
			return 0, err
		}
		poms = append(poms, pom)
		startAt[p] = max(oldest, newest-perPartition)
		pom.MarkOffset(startAt[p], "")
		total += newest - startAt[p]
	}
	offsets.Commit()
	for _, pom := range poms {
		err = errors.Join(err, pom.Close())
	}
	if err = errors.Join(err, offsets.Close()); err != nil {
		return 0, err
	}
	// Read back: a start that did not stick would time the whole topic.
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return 0, err
	}
	got, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if err != nil {
		return 0, err
	}
	for p, want := range startAt {
		if b := got.GetBlock(topic, p); b == nil || b.Offset != want {
			return 0, fmt.Errorf("partition %d: committed %+v, want %d", p, b, want)
		}
	}
	return total, nil
}

type backlogResult struct {
	Events    int64   `json:"events"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"perSecond"`
}

// projectorBacklog starts a second projector with its own consumer group
// and Mongo database: the whole internal topic is its backlog.
func projectorBacklog(ctx context.Context, o options) (backlogResult, error) {
	brokers := strings.Split(o.brokers, ",")
	id := bench.RandomID()
	group := "freshbench-" + id
	total, err := commitBacklogStart(brokers, group, o.topic, o.backlogEvents)
	if err != nil {
		return backlogResult{}, fmt.Errorf("committing the backlog's start: %w", err)
	}

	database := "freshbench_" + id
	external := "freshbench-external-" + id
	// Its external events go to a scratch topic, so consumers of the real one see no copies.
	if err := kafkax.CreateTopics(brokers, 12, 1, external); err != nil {
		return backlogResult{}, err
	}
	defer func() { _ = kafkax.DeleteTopics(brokers, external) }()
	dir, err := os.MkdirTemp("", "freshbench-")
	if err != nil {
		return backlogResult{}, err
	}
	httpAddr := bench.FreeAddr()
	projector, err := bench.StartProcess(ctx, dir, "./services/order-projector/cmd/order-projector", nil,
		[]string{"ORDERFLOW_TOPOLOGY_FILE=" + o.topology, "ORDERFLOW_KAFKA_BROKERS=" + o.brokers,
			"ORDERFLOW_PROJECTOR_TOPIC=" + o.topic, "ORDERFLOW_PROJECTOR_GROUP=" + group, "ORDERFLOW_MONGO_URI=" + o.mongoURI,
			"ORDERFLOW_MONGO_DATABASE=" + database, "ORDERFLOW_HTTP_ADDR=" + httpAddr, "ORDERFLOW_LOG_LEVEL=warn",
			"ORDERFLOW_EXTERNAL_TOPIC=" + external},
		"http://"+httpAddr+"/readyz")
	if err != nil {
		return backlogResult{}, err
	}
	defer func() {
		projector.Stop()
		mctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if m, err := mongox.Connect(mctx, o.mongoURI); err == nil {
			_ = m.Database(database).Drop(mctx)
			_ = m.Disconnect(mctx)
		}
	}()
	const applied = `orderflow_projector_events_total{result="applied"}`
	// Timing starts once it is ready; what it applied while starting up is
	// left out of the rate.
	start := time.Now()
	before, _ := testinfra.SumMetrics(httpAddr, applied)
	deadline := start.Add(30 * time.Minute)
	for time.Now().Before(deadline) {
		if n, _ := testinfra.SumMetrics(httpAddr, applied); int64(n) >= total {
			took := time.Since(start)
			events := total - int64(before)
			return backlogResult{Events: events, Seconds: took.Seconds(), PerSecond: float64(events) / took.Seconds()}, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return backlogResult{}, fmt.Errorf("the projector did not work through %d events in 30 minutes:\n%s", total, projector.Output())
}
