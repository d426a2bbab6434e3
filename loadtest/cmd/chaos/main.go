// Command chaos is orderflow's fault-injection suite. It starts a private
// system (two MariaDB shards, a Kafka broker and a durable read store via
// scripts/infra in its own state directory and on its own ports; two relays,
// two projectors, order-command and order-query as processes it controls),
// drives steady load with a client that retries every failed call with the
// same requestId, and meanwhile kills, hangs and restarts one part after
// another. At the end every order the command side confirmed must be
// readable through order-query at its confirmed version, no requestId may
// have produced two orders, orderctl verify must be clean and the
// dead-letter topic empty. Each fault must also raise its cause alert in the
// system's own Prometheus within two minutes and the alert must resolve
// after the recovery; a clean run (-clean) must raise no alert at all.
// Otherwise it prints what failed and exits 1.
//
//	go run ./loadtest/cmd/chaos -rate 60 -duration 30s -out .state/chaos/report.json
//	go run ./loadtest/cmd/chaos -short         # the CI subset
//	go run ./loadtest/cmd/chaos -clean 10m     # steady load, no fault: no alert may fire
//	go run ./loadtest/cmd/chaos -cluster -rate 30   # CLUSTER=1's topology: a broker and instances killed
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/orderflow/orderflow/loadtest/internal/bench"
)

type options struct {
	repo, state, seedLibs string
	rate                  int
	down, warmup, gap     time.Duration
	tail, convergeTimeout time.Duration
	finalWait, retryFor   time.Duration
	faults                string
	short, cluster        bool
	clean                 time.Duration
	changeShare           float64
	readers               int
	out                   string
}

func main() {
	var o options
	flag.StringVar(&o.repo, "repo", ".", "repository root (scripts/infra, services/)")
	flag.StringVar(&o.state, "state", ".state/chaos", "private state directory (data and logs of the private system; wiped at start)")
	flag.StringVar(&o.seedLibs, "seed-libs", ".state", "state directory whose fetched Kafka and read-store libraries are copied when the private one has none")
	flag.IntVar(&o.rate, "rate", 60, "orders placed per second")
	flag.DurationVar(&o.down, "duration", 30*time.Second, "down time of each fault (shard faults and hangs: at least 30 s)")
	flag.StringVar(&o.faults, "faults", "all", "faults to inject, comma-separated (all, or none for a -clean run only): "+faultNames())
	flag.BoolVar(&o.cluster, "cluster", false, "run the cluster topology (three KRaft brokers with RF 3 and min ISR 2, four shards, two instances of every service; what CLUSTER=1 make up starts) and its faults: the active controller's broker and one instance of each service killed")
	flag.BoolVar(&o.short, "short", false, "the CI subset (relay, projector, broker, shard and store kills) with short down times")
	flag.DurationVar(&o.clean, "clean", 0, "healthy load for this long first, during which no alert may fire; without -faults or -short no fault follows")
	flag.DurationVar(&o.warmup, "warmup", 15*time.Second, "healthy load before the first fault")
	flag.DurationVar(&o.gap, "gap", 10*time.Second, "healthy load after a fault converged, before the next")
	flag.DurationVar(&o.tail, "tail", 10*time.Second, "healthy load after the last fault")
	flag.DurationVar(&o.convergeTimeout, "converge-timeout", 2*time.Minute, "longest wait for the read side after a fault before the next one")
	flag.DurationVar(&o.finalWait, "final-wait", 2*time.Minute, "longest wait for the read side to show every confirmed order at the end")
	flag.DurationVar(&o.retryFor, "retry-for", 3*time.Minute, "how long the client retries one call with the same requestId")
	flag.Float64Var(&o.changeShare, "change-share", 0.2, "share of orders accepted or cancelled after placing")
	flag.IntVar(&o.readers, "readers", 16, "concurrent read-back checks of confirmed versions")
	flag.StringVar(&o.out, "out", "", "write the report as JSON here and as Markdown next to it (.md)")
	flag.Parse()
	if o.short && !flagSet("warmup") {
		o.warmup, o.gap, o.tail = 10*time.Second, 5*time.Second, 5*time.Second
	}
	if o.clean > 0 && !o.short && !flagSet("faults") {
		o.faults = "none"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	rep, err := run(ctx, o)
	stop()
	if rep != nil {
		md := rep.markdown()
		fmt.Print(md)
		if o.out != "" {
			if werr := rep.write(o.out, md); werr != nil {
				fmt.Fprintln(os.Stderr, "chaos:", werr)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	if !rep.OK {
		fmt.Fprintln(os.Stderr, "chaos: FAILED:", strings.Join(rep.Failures, "; "))
		os.Exit(1)
	}
}

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func faultNames() string {
	var n []string
	for _, f := range allFaults {
		n = append(n, f.name)
	}
	return strings.Join(n, ",")
}

func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "chaos %s: "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// pause waits d unless ctx ends first.
func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func run(ctx context.Context, o options) (*Report, error) {
	var faults []planned
	var err error
	if o.faults != "none" {
		if faults, err = plan(o.faults, o.down, o.short, o.cluster); err != nil {
			return nil, err
		}
	}
	for _, p := range []*string{&o.repo, &o.state, &o.seedLibs} {
		if *p, err = filepath.Abs(*p); err != nil {
			return nil, err
		}
	}
	if o.seedLibs == o.state {
		o.seedLibs = ""
	}
	topo := singleTopology
	if o.cluster {
		topo = clusterTopology
	}
	sys, err := newSystem(ctx, topo, o.repo, o.state, o.seedLibs, say)
	if err != nil {
		return nil, err
	}
	// Torn down on every way out, Ctrl-C included; a stopped server is
	// continued first.
	defer func() {
		say("tearing the private system down")
		sys.down(context.Background())
	}()
	t0 := time.Now()
	if err := sys.up(ctx); err != nil {
		return nil, err
	}
	say("system up in %.0f s", time.Since(t0).Seconds())
	if sys.cluster {
		if err := sys.checkReplication(3, 2); err != nil {
			return nil, fmt.Errorf("the cluster cannot lose a broker: %w", err)
		}
		say("every order topic has 3 replicas per partition and min.insync.replicas=2")
	}

	// The alerts of the private Prometheus, polled every second from now
	// on. What the start-up raised (services not scraped yet) has to clear
	// before the load starts, so that every alert after it is the load's
	// or a fault's.
	watch := newAlertWatch(sys.prometheusURL())
	watching, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	go watch.run(watching)
	settleFrom := time.Now()
	for ctx.Err() == nil && !watch.quiet(ctx) && time.Since(settleFrom) < resolveBudget {
		pause(ctx, time.Second)
	}
	settled := watch.quiet(ctx)
	settleSeconds := time.Since(settleFrom).Seconds()
	say("alerts quiet=%v %.0f s after start-up (firing: %v)", settled, settleSeconds, watch.firing())

	runID := bench.RandomID()
	tokens, err := sys.tokens()
	if err != nil {
		return nil, err
	}
	c, err := newClient(sys.commandGRPC, sys.queryGRPC, tokens, runID, o.changeShare, o.retryFor, sys.shards)
	if err != nil {
		return nil, err
	}
	defer c.close()
	rep := &Report{Machine: bench.Machine(), Args: os.Args[1:], Rate: o.rate, Short: o.short, Cluster: o.cluster, RunID: runID,
		State: o.state, StartedAt: time.Now(), SettleSeconds: settleSeconds}
	if !settled {
		rep.AlertProblems = append(rep.AlertProblems, fmt.Sprintf("alerts still firing or pending %.0f s after start-up: %v",
			settleSeconds, watch.firing()))
	}

	// The calls outlive the pacer: stopping the load stops new orders, the
	// ones in flight keep retrying until they are confirmed or give up.
	calls, stopCalls := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCalls()
	readers := c.read(calls, o.readers)
	pacing, stopPacing := context.WithCancel(ctx)
	var seq atomic.Int64
	loaded := make(chan int)
	go func() {
		loaded <- bench.Paced(pacing, o.rate, 24*time.Hour, &seq, func(_ context.Context, i int64) error {
			return c.one(calls, i)
		})
	}()
	say("placing %d orders/s (gRPC, retries with the same requestId for up to %s)", o.rate, o.retryFor)
	if o.clean > 0 {
		cleanFrom := time.Now()
		watch.resetPending()
		say("clean run: %s of steady load, no fault; no alert may fire", o.clean)
		pause(ctx, o.clean)
		rep.Clean = &CleanResult{Seconds: time.Since(cleanFrom).Seconds(), Fired: watch.firedIn(cleanFrom, time.Now()),
			Pending: watch.pendingSeen()}
		say("clean run: alerts fired %v, pending at some point %v", rep.Clean.Fired, rep.Clean.Pending)
	} else {
		pause(ctx, o.warmup)
	}

	missing := map[*visit]bool{} // given up on at an earlier fault's convergence
	for _, f := range faults {
		if ctx.Err() != nil {
			break
		}
		// A cause alert still firing from an earlier fault would be taken
		// for this one's detection.
		for waitFrom := time.Now(); ctx.Err() == nil && slices.ContainsFunc(f.alerts, watch.firingNow) &&
			time.Since(waitFrom) < resolveBudget; {
			pause(ctx, time.Second)
		}
		r := FaultResult{Name: f.name, What: f.what, Shard: f.shard, start: time.Now()}
		r.alertFrom = r.start
		target, err := f.inject(ctx, sys)
		r.Target = target
		if err != nil {
			r.Problem = fmt.Sprintf("inject: %v", err)
			say("%s: %v", f.name, err)
		} else {
			say("%s: %s (%s) for at least %s", f.name, f.what, target, f.down)
			pause(ctx, f.down)
			if f.escalate != nil {
				r.escalated = time.Now()
				r.alertFrom = r.escalated
				more, err := f.escalate(ctx, sys, target)
				if err != nil {
					r.Problem = fmt.Sprintf("escalate: %v", err)
				}
				target += "," + more
				r.Target = target
				say("%s: %s down too (after %.0f s)", f.name, more, r.escalated.Sub(r.start).Seconds())
			}
			// Held until its alerts fire, so that they are proven on the
			// fault and not on a shorter one than they can see.
			notFired := func(w wantAlert) bool {
				_, ok := watch.firedAfter(w, r.alertFrom)
				return !ok
			}
			deadline := r.alertFrom.Add(detectBudget)
			for ctx.Err() == nil && time.Now().Before(deadline) && slices.ContainsFunc(f.alerts, notFired) {
				pause(ctx, 500*time.Millisecond)
			}
			r.DownSeconds = time.Since(r.start).Seconds()
			say("%s: alerts firing after %.0f s: %v; recovering", f.name, time.Since(r.alertFrom).Seconds(), watch.firing())
			sys.healed = 0
			if err := f.recover(ctx, sys, target); err != nil {
				r.Problem = fmt.Sprintf("recover: %v", err)
				say("%s: recovering: %v", f.name, err)
			}
			if sys.healed > 0 {
				r.HealSeconds = sys.healed.Seconds()
				say("%s: every partition in sync again %.1f s after the restart", f.name, r.HealSeconds)
			}
		}
		r.recovered = time.Now()
		r.RecoverSeconds = r.recovered.Sub(r.start).Seconds() - r.DownSeconds
		r.wants = f.alerts
		// Converged: every version confirmed by the end of the fault is
		// visible through the query API.
		deadline := r.recovered.Add(o.convergeTimeout)
		for ctx.Err() == nil && len(c.unseen(r.recovered, missing)) > 0 && time.Now().Before(deadline) {
			pause(ctx, 200*time.Millisecond)
		}
		left := c.unseen(r.recovered, missing)
		r.Converged = len(left) == 0
		r.NotVisible = len(left)
		for _, v := range left {
			missing[v] = true
		}
		if last := c.lastObserved(r.recovered, missing); last.After(r.recovered) {
			r.ConvergeSeconds = last.Sub(r.recovered).Seconds()
		}
		say("%s: recovered; read side converged=%v in %.1f s (%d versions not visible)", f.name, r.Converged, r.ConvergeSeconds, r.NotVisible)
		rep.Faults = append(rep.Faults, r)
		pause(ctx, o.gap)
	}
	pause(ctx, o.tail)
	// The alerts of the last faults resolve under the same load.
	for _, f := range rep.Faults {
		for _, w := range f.wants {
			for ctx.Err() == nil && time.Since(f.recovered) < resolveBudget {
				if _, ok := watch.resolvedAfter(w, f.recovered); ok {
					break
				}
				pause(ctx, time.Second)
			}
		}
	}
	rep.judgeAlerts(watch)
	stopWatching()
	stopPacing()
	say("load stopped; waiting for the calls in flight")
	<-loaded
	rep.LoadSeconds = time.Since(rep.StartedAt).Seconds()
	if ctx.Err() != nil {
		return rep, errors.New("interrupted")
	}

	say("checking: every confirmed version readable (up to %s)", o.finalWait)
	deadline := time.Now().Add(o.finalWait)
	for len(c.unseen(time.Now(), nil)) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		pause(ctx, 500*time.Millisecond)
	}
	stopCalls()
	readers.Wait()
	c.mu.Lock()
	orders := slices.Clone(c.orders)
	c.mu.Unlock()
	say("reading all %d confirmed orders again at their last version", len(orders))
	// Every version was shown once already (or its wait above timed out):
	// what is missing now stays missing, 30 s of retries only cover a read
	// side still restarting.
	left := c.sweep(ctx, o.readers, orders, time.Now().Add(30*time.Second))
	rep.check(ctx, sys, c, left)
	rep.summarise(c)
	return rep, nil
}
