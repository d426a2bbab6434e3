// Command dayrun is the day-in-an-hour run against the running system
// (make up): orders at a sustained rate for a duration, a share of them then
// accepted or cancelled, while the outbox backlog, the projector's consumer
// lag, throughput and latency are sampled every second. When the load stops
// it waits until the relay and the projector have caught up and runs
// `orderctl verify --since <start>`: every order placed in the run must have
// all its events published and its MongoDB document at its final version.
//
//	go run ./loadtest/cmd/dayrun -rate 850 -duration 10m -out dayrun.json
//	go run ./loadtest/cmd/dayrun -rate 850 -orders 3000000 -out dayrun.json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow/loadtest/internal/bench"
	"github.com/orderflow/orderflow/loadtest/internal/orderapi"
)

type options struct {
	api          orderapi.Endpoints
	authKey      string
	rate         int
	duration     time.Duration
	orders       int
	day          int
	changeShare  float64
	freshEvery   int
	pipeline     bench.Pipeline
	drainTimeout time.Duration
	rawTime      time.Duration
	profile      string
	profileSecs  int
	topology     string
	mongoURI     string
	mongoDB      string
	out          string
	selfProfile  string
	procs        int
}

func main() {
	var o options
	flag.StringVar(&o.api.Over, "over", "rest", "API to place and read over: rest or grpc")
	flag.StringVar(&o.api.CommandREST, "command", "http://127.0.0.1:8080", "order-command REST base URL (several comma-separated: calls spread round-robin)")
	flag.StringVar(&o.api.QueryREST, "query", "http://127.0.0.1:8081", "order-query REST base URL (several comma-separated: calls spread round-robin)")
	flag.StringVar(&o.api.CommandGRPC, "command-grpc", "127.0.0.1:9090", "order-command gRPC address (several comma-separated: calls spread round-robin)")
	flag.StringVar(&o.authKey, "auth-key", orderapi.DefaultKeyFile, orderapi.KeyFlagUsage)
	flag.StringVar(&o.api.QueryGRPC, "query-grpc", "127.0.0.1:9091", "order-query gRPC address (several comma-separated: calls spread round-robin)")
	flag.IntVar(&o.rate, "rate", 850, "orders placed per second")
	flag.DurationVar(&o.duration, "duration", 10*time.Minute, "how long to place orders")
	flag.IntVar(&o.orders, "orders", 0, "place exactly this many orders at -rate (the duration follows; 0: use -duration)")
	flag.IntVar(&o.day, "day", 3_000_000, "orders in a day of the reference system (for the projection)")
	flag.Float64Var(&o.changeShare, "change-share", 0.2, "share of orders changed after placing (half accepted, half cancelled)")
	flag.IntVar(&o.freshEvery, "fresh-every", 10, "read one order in this many back through the query API at its final version (freshness)")
	flag.StringVar(&o.pipeline.RelayMetrics, "relay-metrics", "127.0.0.1:8082", "outbox-relay HTTP address (/metrics)")
	flag.StringVar(&o.pipeline.ProjectorMetrics, "projector-metrics", "127.0.0.1:8083", "order-projector HTTP address (/metrics)")
	flag.DurationVar(&o.drainTimeout, "drain-timeout", 15*time.Minute, "how long to wait for the pipeline to catch up after the load")
	flag.DurationVar(&o.rawTime, "raw-time", 10*time.Second, "length of the raw-limit measurement before the run (0: skip)")
	flag.StringVar(&o.profile, "profile", "order-command=127.0.0.1:8080,outbox-relay=127.0.0.1:8082,order-projector=127.0.0.1:8083,order-query=127.0.0.1:8081",
		"services to CPU-profile a third of the way into the run (name=HTTP address, needs ORDERFLOW_PPROF=true); written next to -out")
	flag.IntVar(&o.profileSecs, "profile-seconds", 30, "length of the CPU profiles")
	flag.StringVar(&o.topology, "topology", ".state/topology.json", "topology file (for verify)")
	flag.StringVar(&o.mongoURI, "mongo", "mongodb://127.0.0.1:27017", "MongoDB URI (for verify)")
	flag.StringVar(&o.mongoDB, "mongo-database", "orderflow", "MongoDB database of the read side (for verify)")
	flag.StringVar(&o.out, "out", "", "write the results and the timeline as JSON here too")
	flag.StringVar(&o.selfProfile, "self-profile", "", "write the load generator's own CPU profile of the whole run here (its CPU is in the budget too)")
	flag.IntVar(&o.procs, "procs", 1, "Ps of the load generator itself (0: the runtime's own choice, GOMAXPROCS from the environment or one per core). "+
		"It shares the cores with the system it measures and its CPU counts in the budget: one P carries 1,000 orders/s without waking a second thread")
	flag.Parse()
	if o.procs > 0 {
		runtime.GOMAXPROCS(o.procs)
	}
	stop, err := startSelfProfile(o.selfProfile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dayrun:", err)
		os.Exit(1)
	}
	err = run(context.Background(), o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dayrun:", err)
		os.Exit(1)
	}
}

// startSelfProfile starts profiling this process into path ("" profiles
// nothing) and returns what stops it.
func startSelfProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-self-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("-self-profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			say("-self-profile: %v", err)
		}
	}, nil
}

func say(format string, args ...any) { fmt.Fprintf(os.Stderr, "dayrun: "+format+"\n", args...) }

// recorder gathers latencies, both for the whole run and per second.
type recorder struct {
	mu                    sync.Mutex
	place, fresh          []time.Duration
	secPlace, secFresh    []time.Duration
	minPlace, minFresh    []time.Duration
	placed, changed, errs int
	stale                 int
	sec                   bench.DaySample
}

func (r *recorder) placedIn(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.place, r.secPlace, r.minPlace = append(r.place, d), append(r.secPlace, d), append(r.minPlace, d)
	r.placed++
	r.sec.Placed++
}

func (r *recorder) freshIn(d time.Duration, visible bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fresh, r.secFresh, r.minFresh = append(r.fresh, d), append(r.secFresh, d), append(r.minFresh, d)
	if !visible {
		r.stale++
	}
}

func (r *recorder) count(changed, failed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if changed {
		r.changed++
		r.sec.Changed++
	}
	if failed {
		r.errs++
		r.sec.Errors++
	}
}

// second closes the current one-second sample.
func (r *recorder) second(n int) bench.DaySample {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sec
	s.Second = n
	slices.Sort(r.secPlace)
	slices.Sort(r.secFresh)
	s.PlaceP99Ms, s.FreshP99Ms = bench.Percentile(r.secPlace, 0.99), bench.Percentile(r.secFresh, 0.99)
	r.sec, r.secPlace, r.secFresh = bench.DaySample{}, r.secPlace[:0], r.secFresh[:0]
	return s
}

// minute closes the current minute, whose seconds are samples: its counts
// and maxima come from them, its percentiles from the minute's latencies.
func (r *recorder) minute(n int, samples []bench.DaySample) bench.DayMinute {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := bench.DayMinute{Minute: n}
	slices.Sort(r.minPlace)
	slices.Sort(r.minFresh)
	m.PlaceP99Ms = bench.Percentile(r.minPlace, 0.99)
	m.FreshP50Ms, m.FreshP99Ms = bench.Percentile(r.minFresh, 0.5), bench.Percentile(r.minFresh, 0.99)
	for _, s := range samples {
		m.Placed, m.Errors = m.Placed+s.Placed, m.Errors+s.Errors
		m.MaxPending, m.MaxLag = max(m.MaxPending, s.Pending), max(m.MaxLag, s.ConsumerLag)
	}
	r.minPlace, r.minFresh = r.minPlace[:0], r.minFresh[:0]
	return m
}

func run(ctx context.Context, o options) error {
	tokens, err := orderapi.Tokens(o.authKey)
	if err != nil {
		return err
	}
	o.api.Tokens = tokens
	api, err := orderapi.New(o.api)
	if err != nil {
		return err
	}
	defer api.Close()
	targets, err := bench.ParseTargets(o.profile)
	if err != nil {
		return fmt.Errorf("-profile: %w", err)
	}
	verifier, err := buildOrderctl(ctx)
	if err != nil {
		return err
	}
	if o.rate < 1 {
		return fmt.Errorf("-rate must be at least 1, got %d", o.rate)
	}
	if o.orders < 0 {
		return fmt.Errorf("-orders must not be negative, got %d", o.orders)
	}
	if o.orders > 0 {
		// Paced places duration/interval orders: exactly o.orders.
		o.duration = time.Duration(o.orders) * (time.Second / time.Duration(o.rate))
	}
	res := bench.DayResult{Machine: bench.Machine(), Over: o.api.Over, RateAsked: o.rate, Day: o.day, OrdersAsked: o.orders}
	res.CPUSpeedMicros = bench.CPUSpeed()
	say("CPU speed: %.1f µs per Ed25519 check on one core", res.CPUSpeedMicros)
	if o.rawTime > 0 {
		say("raw limit: the PlaceOrder transaction straight to scratch databases, 32 clients, %s", o.rawTime)
		if res.Raw, err = bench.RawLimitOf(ctx, o.topology, o.rawTime); err != nil {
			return err
		}
	}
	// Orders are selected for verify by placed_at, which the shards stamp
	// in whole seconds; start the window a second early.
	start := time.Now().UTC().Add(-time.Second).Truncate(time.Second)
	runID := bench.RandomID()
	rec := &recorder{}

	cpuBefore, err := bench.SnapshotCPU()
	if err != nil {
		return err
	}
	say("placing %d orders/s for %s over %s", o.rate, o.duration, o.api.Over)
	sampling, stopSampling := context.WithCancel(ctx)
	var timeline []bench.DaySample
	var minutes []bench.DayMinute
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for n := 1; ; n++ {
			last := false
			select {
			case <-sampling.Done():
				last = true // the part-second since the last tick is a sample too
			case <-tick.C:
			}
			s := rec.second(n)
			s.Pending, s.ConsumerLag, _ = o.pipeline.Backlog()
			timeline = append(timeline, s)
			if n%60 == 0 || last {
				minutes = append(minutes, rec.minute(len(minutes)+1, timeline[len(minutes)*60:]))
			}
			if last {
				return
			}
			if n%30 == 0 {
				say("%4d s: %d placed/s, p99 %.0f ms, freshness p99 %.0f ms, outbox pending %.0f, consumer lag %.0f, errors so far %d",
					n, s.Placed, s.PlaceP99Ms, s.FreshP99Ms, s.Pending, s.ConsumerLag, rec.errs)
			}
		}
	}()

	profiled := make(chan []string, 1)
	if o.out == "" || len(targets) == 0 || o.duration/3+time.Duration(o.profileSecs)*time.Second > o.duration {
		profiled <- nil
	} else {
		go func() {
			select {
			case <-time.After(o.duration / 3):
			case <-ctx.Done():
				profiled <- nil
				return
			}
			say("CPU profiles of %d services for %d s", len(targets), o.profileSecs)
			files, err := bench.CPUProfiles(ctx, targets, o.profileSecs, filepath.Join(filepath.Dir(o.out), "profiles"))
			if err != nil {
				say("%v", err)
			}
			profiled <- files
		}()
	}

	var seq atomic.Int64
	loadStart := time.Now()
	bench.Paced(ctx, o.rate, o.duration, &seq, func(ctx context.Context, i int64) error {
		return oneOrder(ctx, api, rec, o, fmt.Sprintf("day-%s-%d", runID, i), i)
	})
	loaded := time.Since(loadStart)

	say("load done; waiting for the relay and the projector to catch up")
	drain, drained := o.pipeline.WaitDrained(ctx, o.drainTimeout)
	res.DrainSeconds = drain.Seconds()
	res.WallSeconds = time.Since(loadStart).Seconds()
	cpuAfter, cpuErr := bench.SnapshotCPU()
	stopSampling()
	<-sampled
	if !drained {
		say("the pipeline did not catch up within %s; verify will name what is behind", o.drainTimeout)
	}

	say("verifying every order placed since %s", start.Format(time.RFC3339))
	verify := exec.CommandContext(ctx, verifier, "verify", "--since", start.Format(time.RFC3339), "--topology", o.topology, "--mongo", o.mongoURI, "--mongo-database", o.mongoDB)
	out, verr := verify.CombinedOutput()
	res.VerifyOK, res.VerifyOutput = verr == nil, lastLines(string(out), 12)

	rec.mu.Lock()
	res.Seconds, res.Placed, res.Changed, res.Errors, res.Stale = loaded.Seconds(), rec.placed, rec.changed, rec.errs, rec.stale
	res.Achieved = float64(rec.placed) / loaded.Seconds()
	res.Place = bench.Summarise("place", rec.place, loaded)
	res.Freshness = bench.Summarise("freshness", rec.fresh, loaded)
	rec.mu.Unlock()
	res.Timeline, res.Minutes = timeline, minutes
	if cpuErr != nil {
		say("no CPU figures: %v", cpuErr)
	} else {
		cpu := bench.CPUBetween(cpuBefore, cpuAfter, res.Placed, res.WallSeconds)
		res.CPU = &cpu
	}
	res.Profiles = <-profiled
	for _, s := range timeline {
		res.MaxPending, res.MaxLag = max(res.MaxPending, s.Pending), max(res.MaxLag, s.ConsumerLag)
	}
	if res.Achieved > 0 {
		res.ProjectedDayMin = (float64(o.day)/res.Achieved + res.DrainSeconds) / 60
	}
	printSummary(res, o)
	if o.out != "" {
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return err
		}
		data, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(o.out, data, 0o644); err != nil {
			return err
		}
	}
	if !res.VerifyOK {
		return fmt.Errorf("verify found orders whose events or documents are not final:\n%s", res.VerifyOutput)
	}
	return nil
}

// oneOrder places an order, changes some of them (a customer cancelling,
// a shop accepting) and reads every freshEvery-th back at its final version.
func oneOrder(ctx context.Context, api orderapi.Client, rec *recorder, o options, requestID string, i int64) error {
	t0 := time.Now()
	no, err := api.Place(ctx, requestID, i)
	if err != nil {
		rec.count(false, true)
		return err
	}
	rec.placedIn(time.Since(t0))
	version := int64(1)
	if r := rand.Float64(); r < o.changeShare {
		change := api.Accept
		if r < o.changeShare/2 {
			change = api.Cancel
		}
		v, err := change(ctx, no)
		if err != nil {
			rec.count(false, true)
			return err
		}
		version = v
		rec.count(true, false)
	}
	if o.freshEvery > 0 && i%int64(o.freshEvery) == 0 {
		written := time.Now()
		visible, err := api.Read(ctx, no, version)
		if err != nil {
			rec.count(false, true)
			return err
		}
		rec.freshIn(time.Since(written), visible)
	}
	return nil
}

func buildOrderctl(ctx context.Context) (string, error) {
	dir, err := os.MkdirTemp("", "dayrun-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "orderctl")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./services/orderctl/cmd/orderctl").CombinedOutput(); err != nil {
		return "", fmt.Errorf("building orderctl (run from the repository root): %v\n%s", err, out)
	}
	return bin, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func printSummary(r bench.DayResult, o options) {
	verdict := "**all final**"
	if !r.VerifyOK {
		verdict = "**MISMATCHES** (see below)"
	}
	fmt.Printf("over %s, %d orders/s asked for %.0f s, %.0f %% of orders then accepted or cancelled\n\n", r.Over, r.RateAsked, r.Seconds, 100*o.changeShare)
	fmt.Printf("| measure | value |\n|---|---|\n")
	fmt.Printf("| orders placed | %d (**%.0f/s** sustained), %d changed, %d errors |\n", r.Placed, r.Achieved, r.Changed, r.Errors)
	if r.Raw.PerSecond > 0 {
		fmt.Printf("| raw write limit, same run | %.0f tx/s; the sustained rate is **%.0f %%** of it |\n", r.Raw.PerSecond, 100*r.Achieved/r.Raw.PerSecond)
	}
	fmt.Printf("| PlaceOrder p50 / p99 | %.1f / %.1f ms |\n", r.Place.P50Ms, r.Place.P99Ms)
	fmt.Printf("| freshness p50 / p99 (1 order in %d, at its final version) | %.1f / **%.1f ms**, %d not visible within the wait |\n", o.freshEvery, r.Freshness.P50Ms, r.Freshness.P99Ms, r.Stale)
	fmt.Printf("| outbox backlog, max | %.0f rows |\n| consumer lag, max | %.0f events |\n", r.MaxPending, r.MaxLag)
	fmt.Printf("| caught up after the load | %.1f s |\n", r.DrainSeconds)
	fmt.Printf("| wall time, first order to the last readable at its final version | **%.1f min** |\n", r.WallSeconds/60)
	worst, over := r.FreshnessByMinute()
	fmt.Printf("| freshness p99 per minute: worst / minutes at 1 s or more | %.1f ms (minute %d) / **%d of %d** |\n", worst.FreshP99Ms, worst.Minute, over, len(r.Minutes))
	if r.CPU != nil {
		fmt.Printf("| CPU per order, every process | **%.3f ms** (CPU speed: %.1f µs per Ed25519 check) |\n", r.CPU.MsPerOrder(""), r.CPUSpeedMicros)
	}
	fmt.Printf("| verify (every order of the run) | %s |\n", verdict)
	fmt.Printf("| projected time for %d orders | **%.0f min** |\n\n", r.Day, r.ProjectedDayMin)
	fmt.Printf("```\n%s\n```\n", r.VerifyOutput)
	if r.CPU != nil {
		fmt.Printf("\nCPU over the wall time, by process:\n\n%s", r.CPU.Markdown())
	}
	if len(r.Profiles) > 0 {
		fmt.Printf("\nCPU profiles (go tool pprof -top FILE): %s\n", strings.Join(r.Profiles, ", "))
	}
}
