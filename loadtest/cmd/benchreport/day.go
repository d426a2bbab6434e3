package main

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot/plotter"

	"github.com/orderflow/orderflow/loadtest/internal/bench"
)

// dayReport adds the day-in-an-hour run (dayrun.json) and its charts over time.
func dayReport(dir string, md *strings.Builder) (bool, error) {
	f := filepath.Join(dir, "dayrun.json")
	if !exists(f) {
		return false, nil
	}
	var d bench.DayResult
	if err := readJSON(f, &d); err != nil {
		return false, err
	}
	verdict := "every order's document at its final version, every event published"
	if !d.VerifyOK {
		verdict = "MISMATCHES: see dayrun.md"
	}
	fmt.Fprintf(md, "## Day in an hour (%d orders/s asked over %s for %.0f s)\n\n| measure | value |\n|---|---|\n", d.RateAsked, d.Over, d.Seconds)
	fmt.Fprintf(md, "| orders placed | %d (%.0f/s sustained), %d changed, %d errors |\n", d.Placed, d.Achieved, d.Changed, d.Errors)
	if d.Raw.PerSecond > 0 {
		fmt.Fprintf(md, "| raw write limit, same run | %.0f tx/s; sustained rate %.0f %% of it |\n", d.Raw.PerSecond, 100*d.Achieved/d.Raw.PerSecond)
	}
	fmt.Fprintf(md, "| PlaceOrder p50 / p99 | %.1f / %.1f ms |\n", d.Place.P50Ms, d.Place.P99Ms)
	fmt.Fprintf(md, "| freshness p50 / p99 | %.1f / %.1f ms (%d not visible within the wait) |\n", d.Freshness.P50Ms, d.Freshness.P99Ms, d.Stale)
	fmt.Fprintf(md, "| outbox backlog max / consumer lag max | %.0f rows / %.0f events |\n", d.MaxPending, d.MaxLag)
	fmt.Fprintf(md, "| caught up after the load | %.1f s |\n| verify | %s |\n", d.DrainSeconds, verdict)
	fmt.Fprintf(md, "| projected time for %d orders | %.0f min |\n", d.Day, d.ProjectedDayMin)
	if d.WallSeconds > 0 {
		fmt.Fprintf(md, "| wall time to the last order readable at its final version | %.1f min |\n", d.WallSeconds/60)
	}
	if len(d.Minutes) > 0 {
		worst, over := d.FreshnessByMinute()
		fmt.Fprintf(md, "| freshness p99 per minute: worst / minutes at 1 s or more | %.1f ms / %d of %d |\n", worst.FreshP99Ms, over, len(d.Minutes))
	}
	if d.CPU != nil {
		fmt.Fprintf(md, "| CPU per order, every process | %.3f ms (CPU speed: %.1f µs per Ed25519 check) |\n", d.CPU.MsPerOrder(""), d.CPUSpeedMicros)
	}
	md.WriteString("\n")
	if d.CPU != nil {
		fmt.Fprintf(md, "CPU of the day run by process:\n\n%s\n", d.CPU.Markdown())
	}

	rate, latency, backlog := map[string]plotter.XYs{}, map[string]plotter.XYs{}, map[string]plotter.XYs{}
	for _, s := range d.Timeline {
		x := float64(s.Second)
		rate["orders placed per second"] = append(rate["orders placed per second"], plotter.XY{X: x, Y: float64(s.Placed)})
		latency["PlaceOrder p99"] = append(latency["PlaceOrder p99"], plotter.XY{X: x, Y: s.PlaceP99Ms})
		latency["freshness p99"] = append(latency["freshness p99"], plotter.XY{X: x, Y: s.FreshP99Ms})
		backlog["outbox pending rows"] = append(backlog["outbox pending rows"], plotter.XY{X: x, Y: s.Pending})
		backlog["projector consumer lag"] = append(backlog["projector consumer lag"], plotter.XY{X: x, Y: s.ConsumerLag})
	}
	charts := []struct {
		file, title, y string
		series         map[string]plotter.XYs
	}{
		{"day-throughput.png", "Day run: orders placed per second", "orders/s", rate},
		{"day-latency.png", "Day run: PlaceOrder and freshness p99 per second", "ms", latency},
		{"day-backlog.png", "Day run: outbox backlog and consumer lag", "rows / events", backlog},
	}
	for _, c := range charts {
		if len(d.Timeline) == 0 {
			break
		}
		if err := lineChart(filepath.Join(dir, c.file), c.title, "seconds since the start", c.y, c.series); err != nil {
			return false, err
		}
		fmt.Fprintf(md, "![%s](%s)\n", c.title, c.file)
	}
	if len(d.Minutes) > 0 {
		perMinute := map[string]plotter.XYs{}
		for _, m := range d.Minutes {
			x := float64(m.Minute)
			perMinute["freshness p99"] = append(perMinute["freshness p99"], plotter.XY{X: x, Y: m.FreshP99Ms})
			perMinute["freshness p50"] = append(perMinute["freshness p50"], plotter.XY{X: x, Y: m.FreshP50Ms})
			perMinute["PlaceOrder p99"] = append(perMinute["PlaceOrder p99"], plotter.XY{X: x, Y: m.PlaceP99Ms})
		}
		const title = "Day run: freshness and PlaceOrder per minute"
		if err := lineChart(filepath.Join(dir, "day-minutes.png"), title, "minute", "ms", perMinute); err != nil {
			return false, err
		}
		fmt.Fprintf(md, "![%s](day-minutes.png)\n", title)
	}
	md.WriteString("\n")
	return true, nil
}

// k6Summary is the part of k6's --summary-export this report uses.
type k6Summary struct {
	Metrics map[string]map[string]any `json:"metrics"`
}

// k6Report adds every k6-*.json (k6 run --summary-export) found.
func k6Report(dir string, md *strings.Builder) (bool, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "k6-*.json"))
	if len(files) == 0 {
		return false, nil
	}
	sort.Strings(files)
	md.WriteString("## k6 scenarios\n\n| run | iterations/s (dropped) | requests/s | write p50 / p99 ms | read p50 / p99 ms | failed requests | checks passed | thresholds |\n|---|---|---|---|---|---|---|---|\n")
	for _, f := range files {
		var s k6Summary
		if err := readJSON(f, &s); err != nil {
			return false, err
		}
		// REST scripts report http_* metrics, gRPC scripts grpc_*; k6 counts
		// gRPC requests only in the duration trend (with "count" among the
		// trend stats), so their rate is count over the run's length.
		kind, failed := "http", "–"
		reqRate := num(s.Metrics["http_reqs"], "rate")
		if m, ok := s.Metrics["http_req_failed"]; ok {
			failed = fmt.Sprintf("%.2f %%", 100*num(m, "value"))
		}
		if m, ok := s.Metrics["grpc_req_duration"]; ok {
			kind = "grpc"
			if it := s.Metrics["iterations"]; num(it, "rate") > 0 {
				reqRate = num(m, "count") / (num(it, "count") / num(it, "rate"))
			}
		}
		write, read := s.Metrics[kind+"_req_duration{kind:write}"], s.Metrics[kind+"_req_duration{kind:read}"]
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "k6-"), ".json")
		// k6 drops an iteration it had no free virtual user to start: the
		// arrival rate asked was not offered.
		fmt.Fprintf(md, "| %s | %.0f (%.0f) | %.0f | %.1f / %.1f | %.1f / %.1f | %s | %.2f %% | %s |\n", name,
			num(s.Metrics["iterations"], "rate"), num(s.Metrics["dropped_iterations"], "count"), reqRate, num(write, "med"), num(write, "p(99)"),
			num(read, "med"), num(read, "p(99)"), failed, 100*num(s.Metrics["checks"], "value"), thresholds(s))
	}
	md.WriteString("\n")
	return true, nil
}

func num(m map[string]any, key string) float64 {
	v, _ := m[key].(float64)
	return v
}

// thresholds names the thresholds k6 found crossed, or says all held.
func thresholds(s k6Summary) string {
	var crossed []string
	for name, m := range s.Metrics {
		th, _ := m["thresholds"].(map[string]any)
		for expr, failed := range th {
			// In the export a threshold maps to true when it was crossed.
			if b, _ := failed.(bool); b {
				crossed = append(crossed, name+" "+expr)
			}
		}
	}
	if len(crossed) == 0 {
		return "all held"
	}
	sort.Strings(crossed)
	return "crossed: " + strings.Join(crossed, ", ")
}
