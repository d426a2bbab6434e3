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
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/IBM/sarama"

	"github.com/orderflow/orderflow/loadtest/internal/bench"
	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/mongox"
	"github.com/orderflow/orderflow/shared/testinfra"
)

type options struct {
	command, query string
	// over is "rest" or "grpc": the API the orders are placed and read over.
	over                   string
	commandGRPC, queryGRPC string
	rates                  string
	duration               time.Duration
	topology               string
	brokers                string
	topic                  string
	mongoURI               string
	out                    string
}

func main() {
	var o options
	flag.StringVar(&o.command, "command", "http://127.0.0.1:8080", "order-command REST base URL")
	flag.StringVar(&o.query, "query", "http://127.0.0.1:8081", "order-query REST base URL")
	flag.StringVar(&o.over, "over", "rest", "API to place and read over: rest or grpc")
	flag.StringVar(&o.commandGRPC, "command-grpc", "127.0.0.1:9090", "order-command gRPC address")
	flag.StringVar(&o.queryGRPC, "query-grpc", "127.0.0.1:9091", "order-query gRPC address")
	flag.StringVar(&o.rates, "rates", "200,500,1000", "orders per second, one phase each")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "length of each phase")
	flag.StringVar(&o.topology, "topology", ".state/topology.json", "topology file (for the backlog projector)")
	flag.StringVar(&o.brokers, "brokers", "127.0.0.1:19092", "Kafka bootstrap servers")
	flag.StringVar(&o.topic, "topic", kafkax.TopicInternal, "internal events topic (the backlog)")
	flag.StringVar(&o.mongoURI, "mongo", "mongodb://127.0.0.1:27017", "MongoDB URI")
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
	api, closeAPI, err := newAPI(o)
	if err != nil {
		return err
	}
	defer closeAPI()
	runID := bench.RandomID()
	var phases []phase
	for _, r := range strings.Split(o.rates, ",") {
		rate, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || rate < 1 {
			return fmt.Errorf("bad rate %q", r)
		}
		say("%d orders/s for %s", rate, o.duration)
		phases = append(phases, measure(ctx, api, o, rate, runID))
	}
	say("projector from a backlog")
	backlog, err := projectorBacklog(ctx, o)
	if err != nil {
		return err
	}

	fmt.Printf("over %s\n\n| orders/s asked (achieved) | place p50 / p99 | freshness p50 / p99 | stale (> wait) | errors |\n|---|---|---|---|---|\n", o.over)
	for _, p := range phases {
		fmt.Printf("| %d (%.0f) | %.1f / %.1f ms | %.1f / **%.1f ms** | %d | %d |\n", p.Rate, p.Achieved, p.Place.P50Ms, p.Place.P99Ms,
			p.Freshness.P50Ms, p.Freshness.P99Ms, p.Stale, p.Errors)
	}
	fmt.Printf("\nprojector from a backlog: %d events in %.1f s = **%.0f events/s**\n", backlog.Events, backlog.Seconds, backlog.PerSecond)
	if o.out != "" {
		data, _ := json.MarshalIndent(map[string]any{"machine": bench.Machine(), "over": o.over, "phases": phases, "backlog": backlog}, "", "  ")
		return os.WriteFile(o.out, data, 0o644)
	}
	return nil
}

// measure places rate orders a second for o.duration (open loop) and, after
// each response, asks the query API for the order with minVersion=1, which
// waits server-side until the projector wrote it.
func measure(ctx context.Context, api orderAPI, o options, rate int, runID string) phase {
	var mu sync.Mutex
	var place, fresh []time.Duration
	var stale, errs atomic.Int64
	var seq atomic.Int64
	start := time.Now()
	bench.Paced(ctx, rate, o.duration, &seq, func(ctx context.Context, i int64) error {
		t0 := time.Now()
		no, err := api.place(ctx, fmt.Sprintf("fresh-%s-%d-%d", runID, rate, i), i)
		placed := time.Now()
		if err != nil {
			errs.Add(1)
			return err
		}
		visible, err := api.read(ctx, no)
		seen := time.Now()
		switch {
		case err != nil:
			errs.Add(1)
			return err
		case !visible:
			stale.Add(1)
		}
		mu.Lock()
		place = append(place, placed.Sub(t0))
		fresh = append(fresh, seen.Sub(placed))
		mu.Unlock()
		return nil
	})
	elapsed := time.Since(start)
	return phase{Rate: rate, Achieved: float64(len(place)) / elapsed.Seconds(),
		Place: bench.Summarise("place", place, o.duration), Freshness: bench.Summarise("freshness", fresh, o.duration),
		Stale: int(stale.Load()), Errors: int(errs.Load())}
}

func placeOrder(ctx context.Context, c *http.Client, base, requestID string, i int64) (string, error) {
	body := fmt.Sprintf(`{"requestId":%q,"userId":"user-%d","shopId":"shop-%d","deliveryAddress":"1 Teheran-ro, Seoul",`+
		`"items":[{"menuId":"m-1","name":"Bibimbap","quantity":2,"unitPrice":"9000"}]}`, requestID, i%5000, i%300)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/orders", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		Order struct {
			OrderNo string `json:"orderNo"`
		} `json:"order"`
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return "", fmt.Errorf("place: HTTP %d %s", resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", err
	}
	return out.Order.OrderNo, nil
}

func readOrder(ctx context.Context, c *http.Client, base, no string) (bool, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/orders/"+no+"?minVersion=1", nil)
	resp, err := c.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return false, nil
	}
	var out struct {
		Stale bool `json:"stale"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return false, err
	}
	return !out.Stale, nil
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
	client, err := sarama.NewClient(brokers, kafkax.NewConfig("freshbench"))
	if err != nil {
		return backlogResult{}, err
	}
	parts, err := client.Partitions(o.topic)
	if err != nil {
		client.Close()
		return backlogResult{}, err
	}
	var total int64
	for _, p := range parts {
		newest, err1 := client.GetOffset(o.topic, p, sarama.OffsetNewest)
		oldest, err2 := client.GetOffset(o.topic, p, sarama.OffsetOldest)
		if err1 != nil || err2 != nil {
			client.Close()
			return backlogResult{}, fmt.Errorf("offsets: %v %v", err1, err2)
		}
		total += newest - oldest
	}
	client.Close()

	dir, err := os.MkdirTemp("", "freshbench-")
	if err != nil {
		return backlogResult{}, err
	}
	bin := filepath.Join(dir, "order-projector")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./services/order-projector/cmd/order-projector").CombinedOutput(); err != nil {
		return backlogResult{}, fmt.Errorf("building the projector (run from the repository root): %v\n%s", err, out)
	}
	id := bench.RandomID()
	database := "freshbench_" + id
	httpAddr := bench.FreeAddr()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "ORDERFLOW_TOPOLOGY_FILE="+o.topology, "ORDERFLOW_KAFKA_BROKERS="+o.brokers,
		"ORDERFLOW_PROJECTOR_TOPIC="+o.topic, "ORDERFLOW_PROJECTOR_GROUP=freshbench-"+id, "ORDERFLOW_MONGO_URI="+o.mongoURI,
		"ORDERFLOW_MONGO_DATABASE="+database, "ORDERFLOW_HTTP_ADDR="+httpAddr, "ORDERFLOW_LOG_LEVEL=warn",
		// Its external events go to a scratch topic, so consumers of the real one see no copies.
		"ORDERFLOW_EXTERNAL_TOPIC=freshbench-external-"+id)
	if err := kafkax.CreateTopics(brokers, 12, 1, "freshbench-external-"+id); err != nil {
		return backlogResult{}, err
	}
	defer func() { _ = kafkax.DeleteTopics(brokers, "freshbench-external-"+id) }()
	logFile, _ := os.Create(filepath.Join(dir, "projector.log"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return backlogResult{}, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		mctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if m, err := mongox.Connect(mctx, o.mongoURI); err == nil {
			_ = m.Database(database).Drop(mctx)
			_ = m.Disconnect(mctx)
		}
	}()
	deadline := start.Add(30 * time.Minute)
	for time.Now().Before(deadline) {
		if n, _ := testinfra.SumMetrics(httpAddr, `orderflow_projector_events_total{result="applied"}`); int64(n) >= total {
			took := time.Since(start)
			return backlogResult{Events: total, Seconds: took.Seconds(), PerSecond: float64(total) / took.Seconds()}, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := os.ReadFile(logFile.Name())
	return backlogResult{}, fmt.Errorf("the projector did not work through %d events in 30 minutes:\n%s", total, log)
}
