package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/orderflow/orderflow/loadtest/internal/bench"
	"github.com/orderflow/orderflow/loadtest/internal/orderapi"
	"github.com/orderflow/orderflow/shared/auth"
	"github.com/orderflow/orderflow/shared/authclient"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/shard"
)

// benchPlaceOrderRate is the PlaceOrder rate and burst of the builds under
// test: far above any rate one machine reaches, so the token bucket never
// refuses, while its cost (a bucket per call) is still paid.
const benchPlaceOrderRate = "1000000"

// commandPkg is the order-command main package, from the repository root.
const commandPkg = "./services/order-command/cmd/order-command"

// build is one order-command build under test, running on ports of its own.
type build struct {
	label  string // "A" (the base revision) or "B" (the working tree)
	proc   *bench.Process
	rest   string
	client orderv1.OrderCommandServiceClient
	conn   *grpc.ClientConn
}

// runAB compares two order-command builds, the revision o.base (A) and the
// working tree (B), side by side against the same scratch databases on the
// same shard servers. Each round measures the raw limit, then A and B over
// REST and over gRPC, A first in even rounds and B first in odd ones, so
// that neither build always runs on the warmer or the noisier side; every
// figure is reported as its ratio to the raw limit of its own round.
func runAB(ctx context.Context, o options) error {
	topo, err := shard.LoadTopology(o.topology)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "placebench-ab-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	rawScratch, cleanupRaw, err := bench.Scratch(ctx, topo, "orderflow_rawbench")
	defer cleanupRaw()
	if err != nil {
		return err
	}
	pools, err := shard.Open(rawScratch, bench.Pool)
	if err != nil {
		return err
	}
	defer pools.Close()
	// The services get databases of their own: their order numbers come
	// from the shards' sequences, the raw loop's from the run's counter.
	svcScratch, cleanupSvc, err := bench.Scratch(ctx, topo, "orderflow_abbench")
	defer cleanupSvc()
	if err != nil {
		return err
	}
	topoFile := filepath.Join(work, "topology.json")
	if err := shard.WriteTopology(topoFile, svcScratch); err != nil {
		return err
	}

	baseSrc := filepath.Join(work, "base-src")
	if err := exportRevision(ctx, o.base, baseSrc); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "placebench: building A (%s) and B (the working tree)\n", o.base)
	binA, err := bench.Build(ctx, baseSrc, commandPkg, filepath.Join(work, "order-command-A"))
	if err != nil {
		return err
	}
	binB, err := bench.Build(ctx, "", commandPkg, filepath.Join(work, "order-command-B"))
	if err != nil {
		return err
	}
	// Both builds verify tokens with a key of the run's own, with a
	// PlaceOrder limit far above what the benchmark's one user places: a
	// base revision without authentication ignores both, and the
	// difference is then the cost of the token check and the limiter.
	if _, err := auth.GenerateKeys(work, 1); err != nil {
		return err
	}
	tokens, err := orderapi.Tokens(filepath.Join(work, auth.SigningKeyFile))
	if err != nil {
		return err
	}
	token, err := benchToken(tokens)
	if err != nil {
		return err
	}
	var builds []*build
	defer func() {
		for _, b := range builds {
			_ = b.conn.Close()
			b.proc.Stop()
		}
	}()
	for _, s := range []struct {
		label, bin string
		env        []string
	}{{"A", binA, o.aEnv}, {"B", binB, nil}} {
		b, err := startBuild(s.label, s.bin, topoFile, filepath.Join(work, auth.PublicKeysFile), token, o.logDir, s.env)
		if err != nil {
			return err
		}
		builds = append(builds, b)
	}
	a, b := builds[0], builds[1]

	raw := bench.PlaceTx(pools)
	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency * 2, MaxConnsPerHost: o.concurrency * 2}, Timeout: 10 * time.Second}
	run := "ab-" + bench.RandomID()
	restOp := func(x *build) func(ctx context.Context, i int64) error {
		return func(ctx context.Context, i int64) error {
			return restPlace(ctx, httpClient, x.rest, token, fmt.Sprintf("%s-%s-r-%d", run, x.label, i))
		}
	}
	grpcOp := func(x *build) func(ctx context.Context, i int64) error {
		return func(ctx context.Context, i int64) error {
			_, err := x.client.PlaceOrder(ctx, placeRequest(fmt.Sprintf("%s-%s-g-%d", run, x.label, i)))
			return err
		}
	}
	type phase struct {
		name string
		op   func(ctx context.Context, i int64) error
		// proc is the build the phase calls (nil for the raw loop): its
		// CPU time over the phase, per order placed, is recorded.
		proc *bench.Process
	}
	rawPhase := phase{"raw", raw, nil}
	pairs := [][2]phase{
		{{"A REST", restOp(a), a.proc}, {"B REST", restOp(b), b.proc}},
		{{"A gRPC", grpcOp(a), a.proc}, {"B gRPC", grpcOp(b), b.proc}},
	}

	var seq atomic.Int64
	var rounds []abRound
	for round := range o.rounds {
		order := []phase{rawPhase}
		for _, p := range pairs {
			if round%2 == 0 {
				order = append(order, p[0], p[1])
			} else {
				order = append(order, p[1], p[0])
			}
		}
		r := abRound{Round: round + 1, Results: map[string]bench.Result{}, CPUPerOrderMs: map[string]float64{}}
		for _, p := range order {
			fmt.Fprintf(os.Stderr, "placebench: round %d/%d: %s, %d clients, %s\n", round+1, o.rounds, p.name, o.concurrency, o.duration)
			r.Order = append(r.Order, p.name)
			var before float64
			if p.proc != nil {
				if before, err = p.proc.CPUSeconds(); err != nil {
					return err
				}
			}
			// The CPU is counted over warm-up and measurement, the orders
			// over the measurement only: the warm-up's share is the same for
			// both builds, and the ratio to A is what the figure is for.
			res := bench.Measure(ctx, p.name, o.concurrency, o.warmup, o.duration, &seq, p.op)
			r.Results[p.name] = res
			if p.proc != nil && res.Ops > 0 {
				after, err := p.proc.CPUSeconds()
				if err != nil {
					return err
				}
				r.CPUPerOrderMs[p.name] = 1000 * (after - before) * res.Seconds / (res.Seconds + o.warmup.Seconds()) / float64(res.Ops)
			}
		}
		rounds = append(rounds, r)
	}
	for _, x := range builds {
		if x.proc.Exited() {
			return fmt.Errorf("order-command %s exited during the run:\n%s", x.label, x.proc.Output())
		}
	}
	summary := reportAB(os.Stdout, o, rounds)
	if o.out != "" {
		data, _ := json.MarshalIndent(map[string]any{"machine": bench.Machine(), "base": o.base, "summary": summary, "rounds": rounds}, "", "  ")
		if err := os.WriteFile(o.out, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// abRound is one round's measurements, in the order they ran.
type abRound struct {
	Round   int                     `json:"round"`
	Order   []string                `json:"order"`
	Results map[string]bench.Result `json:"results"`
	// CPUPerOrderMs is order-command's CPU time per order placed, by
	// phase (the warm-up's CPU prorated away).
	CPUPerOrderMs map[string]float64 `json:"cpuPerOrderMs"`
}

// ratio is a phase's throughput as a share of its round's raw limit, in %.
func (r abRound) ratio(name string) float64 {
	raw := r.Results["raw"].PerSecond
	if raw == 0 {
		return 0
	}
	return 100 * r.Results[name].PerSecond / raw
}

// exportRevision writes the tree of rev into dir (git archive: no checkout,
// no worktree entry in the repository).
func exportRevision(ctx context.Context, rev, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tarball := dir + ".tar"
	if out, err := exec.CommandContext(ctx, "git", "archive", "--format=tar", "-o", tarball, rev).CombinedOutput(); err != nil {
		return fmt.Errorf("git archive %s: %v\n%s", rev, err, out)
	}
	if out, err := exec.CommandContext(ctx, "tar", "-xf", tarball, "-C", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("unpacking %s: %v\n%s", tarball, err, out)
	}
	return os.Remove(tarball)
}

// startBuild starts one build on free ports over the scratch topology,
// verifying tokens with the JWK Set jwks, and waits for it to be ready; its
// client sends token.
func startBuild(label, bin, topoFile, jwks, token, logDir string, extraEnv []string) (*build, error) {
	grpcAddr, httpAddr := bench.FreeAddr(), bench.FreeAddr()
	env := []string{
		"ORDERFLOW_TOPOLOGY_FILE=" + topoFile, "ORDERFLOW_GRPC_ADDR=" + grpcAddr, "ORDERFLOW_HTTP_ADDR=" + httpAddr,
		"ORDERFLOW_LOG_LEVEL=warn", "ORDERFLOW_TOPOLOGY_RELOAD=0",
		"ORDERFLOW_AUTH_JWKS_FILE=" + jwks, "ORDERFLOW_AUTH_PLACE_ORDER_RATE=" + benchPlaceOrderRate, "ORDERFLOW_AUTH_PLACE_ORDER_BURST=" + benchPlaceOrderRate,
	}
	env = append(env, extraEnv...) // later entries win
	if logDir == "" {
		logDir = filepath.Dir(bin)
	}
	proc, err := bench.StartBinary(bin, filepath.Join(logDir, "order-command-"+label+".log"), nil, env, "http://"+httpAddr+"/readyz")
	if err != nil {
		return nil, fmt.Errorf("starting order-command %s: %w", label, err)
	}
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(authclient.Bearer(token)))
	if err != nil {
		proc.Stop()
		return nil, err
	}
	return &build{label: label, proc: proc, rest: "http://" + httpAddr, client: orderv1.NewOrderCommandServiceClient(conn), conn: conn}, nil
}

// abSummary is the median ratio to the raw limit of each phase, and B's
// difference to A in points.
type abSummary struct {
	MedianRatio map[string]float64 `json:"medianRatioPercent"`
	RESTDelta   float64            `json:"restDeltaPoints"`
	GRPCDelta   float64            `json:"grpcDeltaPoints"`
	// MedianCPUPerOrderMs is order-command's median CPU per order by
	// phase; the deltas are B's minus A's, in microseconds.
	MedianCPUPerOrderMs map[string]float64 `json:"medianCpuPerOrderMs"`
	RESTCPUDeltaMicros  float64            `json:"restCpuDeltaMicros"`
	GRPCCPUDeltaMicros  float64            `json:"grpcCpuDeltaMicros"`
}

func reportAB(w io.Writer, o options, rounds []abRound) abSummary {
	names := []string{"A REST", "B REST", "A gRPC", "B gRPC"}
	fmt.Fprintf(w, "A = %s%s, B = the working tree; %d clients, %s per phase, %d rounds\n\n", o.base, envNote(o.aEnv), o.concurrency, o.duration, len(rounds))
	fmt.Fprintf(w, "| round | order | raw orders/s | A REST | B REST | A gRPC | B gRPC |\n|---|---|---|---|---|---|---|\n")
	ratios, cpus := map[string][]float64{}, map[string][]float64{}
	for _, r := range rounds {
		fmt.Fprintf(w, "| %d | %s | %.0f |", r.Round, joinOrder(r.Order), r.Results["raw"].PerSecond)
		for _, n := range names {
			ratio := r.ratio(n)
			ratios[n] = append(ratios[n], ratio)
			cpus[n] = append(cpus[n], r.CPUPerOrderMs[n])
			res := r.Results[n]
			fmt.Fprintf(w, " %.0f/s %.1f %% (p99 %.1f ms, %d errors, %.3f ms CPU/order) |", res.PerSecond, ratio, res.P99Ms, res.Errors, r.CPUPerOrderMs[n])
		}
		fmt.Fprintln(w)
	}
	s := abSummary{MedianRatio: map[string]float64{}, MedianCPUPerOrderMs: map[string]float64{}}
	for _, n := range names {
		s.MedianRatio[n] = median(ratios[n])
		s.MedianCPUPerOrderMs[n] = median(cpus[n])
	}
	s.RESTCPUDeltaMicros = 1000 * (s.MedianCPUPerOrderMs["B REST"] - s.MedianCPUPerOrderMs["A REST"])
	s.GRPCCPUDeltaMicros = 1000 * (s.MedianCPUPerOrderMs["B gRPC"] - s.MedianCPUPerOrderMs["A gRPC"])
	s.RESTDelta = s.MedianRatio["B REST"] - s.MedianRatio["A REST"]
	s.GRPCDelta = s.MedianRatio["B gRPC"] - s.MedianRatio["A gRPC"]
	fmt.Fprintf(w, "\nmedian ratio to the raw limit: A REST %.1f %%, B REST %.1f %% (B-A %+.1f points); A gRPC %.1f %%, B gRPC %.1f %% (B-A %+.1f points)\n",
		s.MedianRatio["A REST"], s.MedianRatio["B REST"], s.RESTDelta, s.MedianRatio["A gRPC"], s.MedianRatio["B gRPC"], s.GRPCDelta)
	fmt.Fprintf(w, "order-command CPU per order (median): A REST %.3f ms, B REST %.3f ms (B-A %+.0f µs); A gRPC %.3f ms, B gRPC %.3f ms (B-A %+.0f µs)\n",
		s.MedianCPUPerOrderMs["A REST"], s.MedianCPUPerOrderMs["B REST"], s.RESTCPUDeltaMicros,
		s.MedianCPUPerOrderMs["A gRPC"], s.MedianCPUPerOrderMs["B gRPC"], s.GRPCCPUDeltaMicros)
	return s
}

// envNote names the environment build A runs with beyond B's, if any.
func envNote(env []string) string {
	if len(env) == 0 {
		return ""
	}
	return " with " + strings.Join(env, " ")
}

func joinOrder(order []string) string {
	out := ""
	for i, n := range order {
		if i > 0 {
			out += " → "
		}
		out += n
	}
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
