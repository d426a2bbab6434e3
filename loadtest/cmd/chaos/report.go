package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/orderflow/orderflow/loadtest/internal/bench"
)

// FaultResult is what one fault did to the system and the client.
type FaultResult struct {
	Name   string `json:"name"`
	What   string `json:"what"`
	Target string `json:"target"`
	// Shard is the shard that was down, -1 for none.
	Shard          int     `json:"shard"`
	DownSeconds    float64 `json:"downSeconds"`
	RecoverSeconds float64 `json:"recoverSeconds"`
	// HealSeconds is, for a broker restart, the time from the restart
	// until every partition had all its replicas in sync again.
	HealSeconds float64 `json:"healSeconds,omitempty"`
	// Problem is an injection or recovery that did not go as planned.
	Problem string `json:"problem,omitempty"`
	// Converged: every version confirmed by the end of the fault became
	// visible, ConvergeSeconds after it; NotVisible were not within the
	// convergence timeout.
	Converged       bool    `json:"converged"`
	ConvergeSeconds float64 `json:"convergeSeconds"`
	NotVisible      int     `json:"notVisible"`
	// Window is from the fault's start to the next fault's (or the end).
	Confirmed    int            `json:"confirmed"`
	ClientErrors map[string]int `json:"clientErrors"`
	ReadErrors   map[string]int `json:"readErrors"`
	// Healthy is PlaceOrder (first attempt to confirmation) of the orders
	// routed to the shards that stayed up, placed during the fault.
	HealthyOrders int     `json:"healthyOrders"`
	HealthyP50Ms  float64 `json:"healthyP50Ms"`
	HealthyP99Ms  float64 `json:"healthyP99Ms"`
	// EscalateSeconds is when, after the start, the fault took the
	// remaining instance down too (0 when it has no such step).
	EscalateSeconds float64 `json:"escalateSeconds,omitempty"`
	// Alerts are the fault's cause alerts, polled from the private
	// Prometheus.
	Alerts []AlertResult `json:"alerts"`
	// OtherAlerts fired during the fault's window besides its own (an SLO
	// burning, a backlog growing): recorded, not asserted.
	OtherAlerts []string `json:"otherAlerts"`

	start, recovered     time.Time
	alertFrom, escalated time.Time
	wants                []wantAlert
}

// AlertResult is how one cause alert answered its fault.
type AlertResult struct {
	Alert string `json:"alert"`
	// Fired within detectBudget; DetectSeconds from the fault's start (from
	// its escalation when it has one) to the first poll that saw it firing.
	Fired         bool    `json:"fired"`
	DetectSeconds float64 `json:"detectSeconds"`
	// FiredDuringFailover: it fired before the escalation, while the
	// other instance was taking over (it must not).
	FiredDuringFailover bool `json:"firedDuringFailover,omitempty"`
	// Resolved within resolveBudget; ResolveSeconds from the end of the
	// recovery (the restart or SIGCONT returned) to the first poll that
	// saw it no longer firing.
	Resolved       bool    `json:"resolved"`
	ResolveSeconds float64 `json:"resolveSeconds"`
}

// CleanResult is the clean window: steady load, no fault.
type CleanResult struct {
	Seconds float64 `json:"seconds"`
	// Fired must be empty; Pending (alerts whose `for` started, then
	// cleared) is recorded only.
	Fired   []string `json:"fired"`
	Pending []string `json:"pending"`
}

// Report is the outcome of a run.
type Report struct {
	Machine     map[string]any `json:"machine"`
	Args        []string       `json:"args"`
	Rate        int            `json:"rate"`
	Short       bool           `json:"short"`
	Cluster     bool           `json:"cluster"`
	RunID       string         `json:"runId"`
	State       string         `json:"state"`
	StartedAt   time.Time      `json:"startedAt"`
	LoadSeconds float64        `json:"loadSeconds"`

	Baseline FaultResult   `json:"baseline"`
	Faults   []FaultResult `json:"faults"`

	// SettleSeconds is how long the start-up's alerts took to clear
	// before the load started.
	SettleSeconds float64      `json:"settleSeconds"`
	Clean         *CleanResult `json:"clean,omitempty"`
	AlertPolls    int          `json:"alertPolls"`
	AlertErrors   int          `json:"alertPollErrors"`
	// AlertProblems are the alert assertions that failed.
	AlertProblems []string `json:"alertProblems"`

	Confirmed   int         `json:"confirmed"`
	Changes     int         `json:"changes"`
	GaveUp      []string    `json:"gaveUp"`
	Lost        []LostOrder `json:"lost"`
	Duplicates  []string    `json:"duplicates"`
	NotOnShards []string    `json:"notOnShards"`
	Reasked     int         `json:"reasked"`
	ReaskWrong  []string    `json:"reaskWrong"`

	VerifyOK     bool       `json:"verifyOK"`
	VerifyOutput string     `json:"verifyOutput"`
	DLQ          int64      `json:"dlq"`
	DLQEntries   []DLQEntry `json:"dlqEntries"`
	CheckErrors  []string   `json:"checkErrors"`

	OK       bool     `json:"ok"`
	Failures []string `json:"failures"`
}

// windowOf names the fault window t falls in.
func (r *Report) windowOf(t time.Time) string {
	name := "baseline"
	for _, f := range r.Faults {
		if !t.Before(f.start) {
			name = f.Name
		}
	}
	return name
}

// check runs the end checks.
func (r *Report) check(ctx context.Context, s *system, c *client, left []*order) {
	c.mu.Lock()
	orders := slices.Clone(c.orders)
	c.mu.Unlock()

	// (1) Every confirmed order readable at its last confirmed version.
	slices.SortFunc(left, func(a, b *order) int { return int(a.no - b.no) })
	for _, o := range left {
		v := c.last(o)
		c.mu.Lock()
		seen := !v.observedAt.IsZero()
		c.mu.Unlock()
		l := LostOrder{OrderNo: o.no, RequestID: o.requestID, Shard: o.shard, Version: v.version,
			Window: r.windowOf(v.confirmedAt), SeenEarlier: seen}
		if len(r.Lost) < 500 {
			l.ReadSide = readSideOf(ctx, c, o.no)
		}
		r.Lost = append(r.Lost, l)
	}

	// (2) One order per requestId: on the shards, and asked again.
	rows, err := shardRows(ctx, s.topologyFile(), r.RunID)
	if err != nil {
		r.CheckErrors = append(r.CheckErrors, fmt.Sprintf("reading the shards: %v", err))
	}
	for _, id := range slices.Sorted(maps.Keys(rows)) {
		if len(rows[id]) > 1 {
			r.Duplicates = append(r.Duplicates, id+": "+strings.Join(rows[id], ", "))
		}
	}
	if err == nil {
		for _, o := range orders {
			want := fmt.Sprintf("%d@shard-%d", o.no, o.shard)
			if !slices.Contains(rows[o.requestID], want) {
				r.NotOnShards = append(r.NotOnShards, fmt.Sprintf("%s (confirmed as %s, shards hold %v)", o.requestID, want, rows[o.requestID]))
			}
		}
	}
	step := max(1, len(orders)/100)
	for k := 0; k < len(orders); k += step {
		o := orders[k]
		no, err := c.place(ctx, o.requestID, o.i)
		r.Reasked++
		if err != nil || no != o.no {
			r.ReaskWrong = append(r.ReaskWrong, fmt.Sprintf("%s: first %d, again %d (%v)", o.requestID, o.no, no, err))
		}
	}

	// (3) orderctl verify, (4) the dead-letter topic.
	r.VerifyOK, r.VerifyOutput = verify(ctx, s)
	if r.DLQ, r.DLQEntries, err = dlq(s.kafkaBrokers()); err != nil {
		r.CheckErrors = append(r.CheckErrors, fmt.Sprintf("reading the DLQ: %v", err))
	}
}

// judgeAlerts fills the alert figures of every fault and of the clean
// window from what the watch saw, and notes what failed.
func (r *Report) judgeAlerts(w *alertWatch) {
	problem := func(format string, args ...any) {
		r.AlertProblems = append(r.AlertProblems, fmt.Sprintf(format, args...))
	}
	now := time.Now()
	for i := range r.Faults {
		f := &r.Faults[i]
		until := now
		if i+1 < len(r.Faults) {
			until = r.Faults[i+1].start
		}
		if !f.escalated.IsZero() {
			f.EscalateSeconds = f.escalated.Sub(f.start).Seconds()
		}
		for _, want := range f.wants {
			a := AlertResult{Alert: want.String()}
			if at, ok := w.firedAfter(want, f.alertFrom); ok {
				a.DetectSeconds = at.Sub(f.alertFrom).Seconds()
				a.Fired = at.Sub(f.alertFrom) <= detectBudget
			}
			if !a.Fired {
				problem("%s: %s did not fire within %s", f.Name, a.Alert, detectBudget)
			}
			if !f.escalated.IsZero() {
				if at, ok := w.firedAfter(want, f.start); ok && at.Before(f.escalated) {
					a.FiredDuringFailover = true
					problem("%s: %s fired during the fail-over, %.0f s after the first kill", f.Name, a.Alert, at.Sub(f.start).Seconds())
				}
			}
			if at, ok := w.resolvedAfter(want, f.recovered); ok {
				a.ResolveSeconds = at.Sub(f.recovered).Seconds()
				a.Resolved = at.Sub(f.recovered) <= resolveBudget
			}
			if a.Fired && !a.Resolved {
				problem("%s: %s did not resolve within %s of the recovery", f.Name, a.Alert, resolveBudget)
			}
			f.Alerts = append(f.Alerts, a)
		}
		f.OtherAlerts = w.firedIn(f.start, until, f.wants...)
	}
	if r.Clean != nil && len(r.Clean.Fired) > 0 {
		problem("clean run: %d alerts fired on a healthy system: %s", len(r.Clean.Fired), strings.Join(r.Clean.Fired, ", "))
	}
	var lastErr string
	r.AlertPolls, r.AlertErrors, lastErr = w.health()
	if r.AlertPolls == 0 {
		problem("the private Prometheus's alerts API never answered (%s)", lastErr)
	}
}

// summarise fills the per-fault figures and the verdict.
func (r *Report) summarise(c *client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.Confirmed, r.Changes, r.GaveUp = len(c.orders), c.changes, c.gaveUp
	end := time.Now()
	windows := []*FaultResult{&r.Baseline}
	r.Baseline.Name, r.Baseline.Shard, r.Baseline.start = "baseline", -1, r.StartedAt
	for i := range r.Faults {
		windows = append(windows, &r.Faults[i])
	}
	if len(r.Faults) > 0 {
		r.Baseline.recovered = r.Faults[0].start
	} else {
		r.Baseline.recovered = end
	}
	for k, w := range windows {
		until := end
		if k+1 < len(windows) {
			until = windows[k+1].start
		}
		in := func(t time.Time) bool { return !t.Before(w.start) && t.Before(until) }
		w.ClientErrors, w.ReadErrors = map[string]int{}, map[string]int{}
		for _, f := range c.failures {
			if !in(f.at) {
				continue
			}
			if f.op == "read" {
				w.ReadErrors[f.code]++
			} else {
				w.ClientErrors[f.op+" "+f.code]++
			}
		}
		var healthy []time.Duration
		for _, o := range c.orders {
			if in(o.confirmed) {
				w.Confirmed++
			}
			if !o.started.Before(w.start) && o.started.Before(w.recovered) && o.shard != w.Shard {
				healthy = append(healthy, o.confirmed.Sub(o.started))
			}
		}
		slices.Sort(healthy)
		w.HealthyOrders, w.HealthyP50Ms, w.HealthyP99Ms = len(healthy), bench.Percentile(healthy, 0.5), bench.Percentile(healthy, 0.99)
	}

	fail := func(format string, args ...any) { r.Failures = append(r.Failures, fmt.Sprintf(format, args...)) }
	if len(r.Lost) > 0 {
		fail("%d confirmed orders not readable at their version", len(r.Lost))
	}
	if len(r.Duplicates) > 0 {
		fail("%d requestIds produced more than one order", len(r.Duplicates))
	}
	if len(r.NotOnShards) > 0 {
		fail("%d confirmed orders not on their shard", len(r.NotOnShards))
	}
	if len(r.ReaskWrong) > 0 {
		fail("%d of %d requestIds asked again did not return their order", len(r.ReaskWrong), r.Reasked)
	}
	if !r.VerifyOK {
		fail("orderctl verify found mismatches")
	}
	if r.DLQ > 0 {
		fail("%d events on the DLQ", r.DLQ)
	}
	if len(r.CheckErrors) > 0 {
		fail("checks could not run: %s", strings.Join(r.CheckErrors, "; "))
	}
	if len(r.GaveUp) > 0 {
		fail("%d orders never confirmed within the client's retry window", len(r.GaveUp))
	}
	for _, f := range r.Faults {
		if f.Problem != "" {
			fail("%s: %s", f.Name, f.Problem)
		}
	}
	if r.Confirmed == 0 {
		fail("no order was confirmed")
	}
	for _, p := range r.AlertProblems {
		fail("%s", p)
	}
	r.OK = len(r.Failures) == 0
}

func byCode(m map[string]int) string {
	if len(m) == 0 {
		return "0"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// markdown is the human report.
func (r *Report) markdown() string {
	var b strings.Builder
	verdict := "**PASS**"
	if !r.OK {
		verdict = "**FAIL**: " + strings.Join(r.Failures, "; ")
	}
	fmt.Fprintf(&b, "chaos run %s: %d orders/s for %.0f s, %d faults (`chaos %s`)\n\n", r.RunID, r.Rate, r.LoadSeconds, len(r.Faults), strings.Join(r.Args, " "))
	fmt.Fprintf(&b, "| fault | down s | confirmed | lost | client-visible errors (failed attempts) | read errors | converged after | healthy-shard PlaceOrder p50 / p99 |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|\n")
	lostIn := map[string]int{}
	for _, l := range r.Lost {
		lostIn[l.Window]++
	}
	for _, f := range append([]FaultResult{r.Baseline}, r.Faults...) {
		conv := fmt.Sprintf("%.1f s", f.ConvergeSeconds)
		if f.Name == "baseline" {
			conv = "-"
		} else if !f.Converged {
			conv = fmt.Sprintf("**not** within the timeout (%d versions)", f.NotVisible)
		}
		if f.Problem != "" {
			conv += " (" + f.Problem + ")"
		}
		fmt.Fprintf(&b, "| %s | %.0f | %d | %d | %s | %s | %s | %.0f / %.0f ms (%d orders) |\n", f.Name, f.DownSeconds, f.Confirmed,
			lostIn[f.Name], byCode(f.ClientErrors), byCode(f.ReadErrors), conv, f.HealthyP50Ms, f.HealthyP99Ms, f.HealthyOrders)
	}
	if len(r.Faults) > 0 {
		fmt.Fprintf(&b, "\n| fault | held s | cause alert | fired after | resolved after recovery | other alerts in the window |\n")
		fmt.Fprintf(&b, "|---|---|---|---|---|---|\n")
		for _, f := range r.Faults {
			for _, a := range f.Alerts {
				fired := fmt.Sprintf("%.0f s", a.DetectSeconds)
				if f.EscalateSeconds > 0 {
					fired += fmt.Sprintf(" (of the second kill, at %.0f s)", f.EscalateSeconds)
				}
				if !a.Fired {
					fired = "**not within " + detectBudget.String() + "**"
				}
				if a.FiredDuringFailover {
					fired += " **(and during the fail-over)**"
				}
				resolved := fmt.Sprintf("%.0f s", a.ResolveSeconds)
				if !a.Resolved {
					resolved = "**not within " + resolveBudget.String() + "**"
				}
				others := strings.Join(f.OtherAlerts, ", ")
				if others == "" {
					others = "none"
				}
				fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %s |\n", f.Name, f.DownSeconds, a.Alert, fired, resolved, others)
			}
			if len(f.Alerts) == 0 {
				others := strings.Join(f.OtherAlerts, ", ")
				if others == "" {
					others = "none"
				}
				fmt.Fprintf(&b, "| %s | %.0f | none expected | - | - | %s |\n", f.Name, f.DownSeconds, others)
			}
		}
		for _, f := range r.Faults {
			if f.HealSeconds > 0 {
				fmt.Fprintf(&b, "\n%s: every partition had all its replicas in sync again %.1f s after the restart began\n", f.Name, f.HealSeconds)
			}
		}
	}
	if r.Clean != nil {
		fired := "**none**"
		if len(r.Clean.Fired) > 0 {
			fired = "**" + strings.Join(r.Clean.Fired, ", ") + "**"
		}
		pending := strings.Join(r.Clean.Pending, ", ")
		if pending == "" {
			pending = "none"
		}
		fmt.Fprintf(&b, "\nclean run: %.0f s of steady load without a fault; alerts fired: %s; pending at some point: %s\n",
			r.Clean.Seconds, fired, pending)
	}
	fmt.Fprintf(&b, "\nalerts polled %d times (%d failed polls); start-up alerts cleared after %.0f s\n", r.AlertPolls, r.AlertErrors, r.SettleSeconds)
	fmt.Fprintf(&b, "\n| check | result |\n|---|---|\n")
	fmt.Fprintf(&b, "| orders confirmed | %d (%d changed), %d never confirmed |\n", r.Confirmed, r.Changes, len(r.GaveUp))
	fmt.Fprintf(&b, "| confirmed, not readable at their version | **%d** |\n", len(r.Lost))
	fmt.Fprintf(&b, "| requestIds with two orders | **%d**; %d confirmed orders not on their shard; %d of %d asked again wrong |\n",
		len(r.Duplicates), len(r.NotOnShards), len(r.ReaskWrong), r.Reasked)
	fmt.Fprintf(&b, "| orderctl verify | %s |\n", map[bool]string{true: "clean", false: "**mismatches**"}[r.VerifyOK])
	fmt.Fprintf(&b, "| DLQ | **%d** events |\n", r.DLQ)
	fmt.Fprintf(&b, "| verdict | %s |\n\n", verdict)
	fmt.Fprintf(&b, "orderctl verify:\n```\n%s\n```\n", r.VerifyOutput)
	if len(r.Lost) > 0 {
		fmt.Fprintf(&b, "\nlost orders (order no, shard, confirmed version, confirmed during, what the read side holds):\n")
		for _, l := range r.Lost {
			seen := ""
			if l.SeenEarlier {
				seen = " (shown at that version earlier in the run, gone since)"
			}
			fmt.Fprintf(&b, "- %d shard-%d v%d %s: %s%s\n", l.OrderNo, l.Shard, l.Version, l.Window, l.ReadSide, seen)
		}
	}
	if len(r.DLQEntries) > 0 {
		fmt.Fprintf(&b, "\nDLQ (first %d):\n", len(r.DLQEntries))
		for _, e := range r.DLQEntries {
			fmt.Fprintf(&b, "- p%d@%d order %s at %s: %s\n", e.Partition, e.Offset, e.OrderNo, e.At, e.Error)
		}
	}
	for _, list := range [][]string{r.Duplicates, r.NotOnShards, r.ReaskWrong, r.CheckErrors} {
		for _, s := range list {
			fmt.Fprintf(&b, "- %s\n", s)
		}
	}
	if len(r.GaveUp) > 0 {
		fmt.Fprintf(&b, "\nnever confirmed: %s\n", strings.Join(r.GaveUp[:min(len(r.GaveUp), 50)], ", "))
	}
	fmt.Fprintf(&b, "\nlogs of the private system: %s/logs\n", r.State)
	return b.String()
}

func (r *Report) write(path, md string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	return os.WriteFile(strings.TrimSuffix(path, filepath.Ext(path))+".md", []byte(md), 0o644)
}
