package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The report reads the tools' JSON and writes the summary and the charts.
func TestReport(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{
		"placebench-c16.json": `{"median":[{"name":"raw","concurrency":16,"perSecond":3000,"p50Ms":3,"p99Ms":15},{"name":"REST","concurrency":16,"perSecond":2100,"p50Ms":5,"p99Ms":22}]}`,
		"placebench-c32.json": `{"median":[{"name":"raw","concurrency":32,"perSecond":3500,"p50Ms":6,"p99Ms":36},{"name":"REST","concurrency":32,"perSecond":2600,"p50Ms":10,"p99Ms":44}]}`,
		"relaybench.json":     `{"drain":{"rows":200000,"rowsPerSecond":34000},"steady":{"p50Ms":5.6,"p99Ms":19.1},"writers":[{"perSecond":3600},{"perSecond":2700}],"rate":1000}`,
		"freshbench.json":     `{"over":"rest","phases":[{"rate":200,"achievedPerSecond":199,"freshness":{"p50Ms":27,"p99Ms":114}},{"rate":500,"achievedPerSecond":464,"freshness":{"p50Ms":52,"p99Ms":336}}],"backlog":{"perSecond":10986}}`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := report(dir); err != nil {
		t.Fatal(err)
	}
	summary, err := os.ReadFile(filepath.Join(dir, "summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| 32 | REST | 2600 | 10.0 | 44.0 | 74 % |", "34000 rows/s", "p99 19.1 ms", "75 % of writers alone",
		"| 500 (464) | 52.0 | 336.0 | 0 |", "10986 events/s", "place-throughput-p99.png", "freshness.png"} {
		if !strings.Contains(string(summary), want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
	for _, png := range []string{"place-throughput-p99.png", "freshness.png"} {
		if st, err := os.Stat(filepath.Join(dir, png)); err != nil || st.Size() < 1000 {
			t.Errorf("chart %s: %v", png, err)
		}
	}
	if err := report(t.TempDir()); err == nil {
		t.Error("a directory without results gave a report")
	}
}
