// Command benchreport turns the JSON that placebench, relaybench,
// freshbench, dayrun and k6 (--summary-export) wrote into one directory into
// a Markdown summary and PNG charts next to them: PlaceOrder throughput
// against p50/p99 with the raw limit, read-side freshness percentiles per
// order rate, and the day run's throughput, latency, outbox backlog and
// consumer lag over time.
//
//	go run ./loadtest/cmd/benchreport -dir bench/results/<timestamp>
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/orderflow/orderflow/loadtest/internal/bench"
)

func main() {
	dir := flag.String("dir", "", "directory holding the benchmark JSON files")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "benchreport: -dir is required")
		os.Exit(2)
	}
	if err := report(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

type placeFile struct {
	Machine map[string]any `json:"machine"`
	Median  []bench.Result `json:"median"`
}

type freshFile struct {
	Over string `json:"over"`
	// ReadEvery is the probe: every n-th order read back (0 in files
	// written before the probe could be sampled: every order).
	ReadEvery int `json:"readEvery"`
	Phases    []struct {
		Rate      int          `json:"rate"`
		Achieved  float64      `json:"achievedPerSecond"`
		Freshness bench.Result `json:"freshness"`
		Stale     int          `json:"stale"`
	} `json:"phases"`
	Backlog struct {
		PerSecond float64 `json:"perSecond"`
	} `json:"backlog"`
}

type relayFile struct {
	Drain struct {
		Rows          int     `json:"rows"`
		RowsPerSecond float64 `json:"rowsPerSecond"`
	} `json:"drain"`
	Steady  bench.Result   `json:"steady"`
	Writers []bench.Result `json:"writers"`
	Rate    int            `json:"rate"`
	Peer    *struct {
		Rows               int               `json:"rows"`
		RowsPerSecond      float64           `json:"rowsPerSecond"`
		SubscribeBatchSize int               `json:"subscribeBatchSize"`
		LibraryVersions    map[string]string `json:"libraryVersions"`
	} `json:"peer"`
	OurToPeerRatio float64 `json:"ourToPeerRatio"`
}

func report(dir string) error {
	var md strings.Builder
	md.WriteString("# Benchmark report\n\n")
	found := false

	places, _ := filepath.Glob(filepath.Join(dir, "placebench-c*.json"))
	sort.Strings(places)
	if len(places) > 0 {
		found = true
		md.WriteString("## PlaceOrder against the raw write limit\n\n| clients | phase | orders/s | p50 ms | p99 ms | vs raw |\n|---|---|---|---|---|---|\n")
		series := map[string]plotter.XYs{}
		for _, f := range places {
			var pf placeFile
			if err := readJSON(f, &pf); err != nil {
				return err
			}
			if len(pf.Median) == 0 {
				continue
			}
			raw := pf.Median[0].PerSecond
			for _, r := range pf.Median {
				fmt.Fprintf(&md, "| %d | %s | %.0f | %.1f | %.1f | %.0f %% |\n", r.Concurrency, r.Name, r.PerSecond, r.P50Ms, r.P99Ms, 100*r.PerSecond/raw)
				series[r.Name] = append(series[r.Name], plotter.XY{X: r.PerSecond, Y: r.P99Ms})
			}
		}
		if err := lineChart(filepath.Join(dir, "place-throughput-p99.png"), "PlaceOrder: throughput against p99 at 16, 32 and 64 clients",
			"orders (transactions) per second", "p99 latency (ms)", series); err != nil {
			return err
		}
		md.WriteString("\n![throughput against p99](place-throughput-p99.png)\n\n")
	}

	if f := filepath.Join(dir, "relaybench.json"); exists(f) {
		found = true
		var rf relayFile
		if err := readJSON(f, &rf); err != nil {
			return err
		}
		fmt.Fprintf(&md, "## Outbox relay\n\n| measure | value |\n|---|---|\n| backlog drain | %.0f rows/s (%d rows) |\n| commit-to-ack at %d orders/s | p50 %.1f ms, p99 %.1f ms |\n",
			rf.Drain.RowsPerSecond, rf.Drain.Rows, rf.Rate, rf.Steady.P50Ms, rf.Steady.P99Ms)
		if p := rf.Peer; p != nil {
			fmt.Fprintf(&md, "| same backlog, Watermill's forwarder (%s; batch %d) | %.0f rows/s (%d rows) |\n| our relay / Watermill | **%.1f×** |\n",
				versions(p.LibraryVersions), p.SubscribeBatchSize, p.RowsPerSecond, p.Rows, rf.OurToPeerRatio)
		}
		if len(rf.Writers) == 2 && rf.Writers[0].PerSecond > 0 {
			fmt.Fprintf(&md, "| writers with the relay running | %.0f %% of writers alone |\n", 100*rf.Writers[1].PerSecond/rf.Writers[0].PerSecond)
		}
		md.WriteString("\n")
	}

	for _, name := range []string{"freshbench", "freshbench-every-order"} {
		f := filepath.Join(dir, name+".json")
		if !exists(f) {
			continue
		}
		found = true
		var ff freshFile
		if err := readJSON(f, &ff); err != nil {
			return err
		}
		probe := "every order read back"
		if ff.ReadEvery > 1 {
			probe = fmt.Sprintf("every %d-th order read back", ff.ReadEvery)
		}
		fmt.Fprintf(&md, "## Read-side freshness (PlaceOrder response to visible in the query API), over %s, %s\n\n"+
			"| orders/s asked (achieved) | p50 ms | p99 ms | not visible within the wait |\n|---|---|---|---|\n", ff.Over, probe)
		series := map[string]plotter.XYs{}
		for _, p := range ff.Phases {
			fmt.Fprintf(&md, "| %d (%.0f) | %.1f | %.1f | %d |\n", p.Rate, p.Achieved, p.Freshness.P50Ms, p.Freshness.P99Ms, p.Stale)
			series["p50"] = append(series["p50"], plotter.XY{X: float64(p.Rate), Y: p.Freshness.P50Ms})
			series["p99"] = append(series["p99"], plotter.XY{X: float64(p.Rate), Y: p.Freshness.P99Ms})
		}
		if ff.Backlog.PerSecond > 0 {
			fmt.Fprintf(&md, "\nProjector from a backlog: %.0f events/s.\n", ff.Backlog.PerSecond)
		}
		if err := lineChart(filepath.Join(dir, name+".png"), "Freshness percentiles by order rate ("+probe+")", "orders per second", "freshness (ms)", series); err != nil {
			return err
		}
		fmt.Fprintf(&md, "\n![freshness](%s.png)\n\n", name)
	}
	ok, err := dayReport(dir, &md)
	if err != nil {
		return err
	}
	found = found || ok
	ok, err = k6Report(dir, &md)
	if err != nil {
		return err
	}
	found = found || ok
	ok, err = profileReport(dir, &md)
	if err != nil {
		return err
	}
	found = found || ok
	if !found {
		return fmt.Errorf("no benchmark results in %s", dir)
	}
	return os.WriteFile(filepath.Join(dir, "summary.md"), []byte(md.String()), 0o644)
}

// versions lists module@version pairs in a stable order.
func versions(v map[string]string) string {
	out := make([]string, 0, len(v))
	for m, ver := range v {
		out = append(out, m+" "+ver)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

var palette = []color.Color{
	color.RGBA{R: 31, G: 119, B: 180, A: 255}, color.RGBA{R: 255, G: 127, B: 14, A: 255},
	color.RGBA{R: 44, G: 160, B: 44, A: 255}, color.RGBA{R: 214, G: 39, B: 40, A: 255},
}

func lineChart(path, title, x, y string, series map[string]plotter.XYs) error {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, x, y
	p.Add(plotter.NewGrid())
	names := make([]string, 0, len(series))
	for n := range series {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		pts := series[n]
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		line.Color, points.Color = palette[i%len(palette)], palette[i%len(palette)]
		line.Width = vg.Points(2)
		p.Add(line, points)
		p.Legend.Add(n, line, points)
	}
	p.Legend.Top = true
	return p.Save(9*vg.Inch, 5*vg.Inch, path)
}
