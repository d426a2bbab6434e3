package main

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"runtime/pprof"
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
		"relaybench.json": `{"drain":{"rows":200000,"rowsPerSecond":34000},"steady":{"p50Ms":5.6,"p99Ms":19.1},"writers":[{"perSecond":3600},{"perSecond":2700}],"rate":1000,` +
			`"peer":{"rows":200000,"rowsPerSecond":2000,"subscribeBatchSize":1000,"libraryVersions":{"github.com/ThreeDotsLabs/watermill":"v1.5.1"}},"ourToPeerRatio":17}`,
		"dayrun.json": `{"over":"rest","rateAsked":850,"raw":{"perSecond":2000},"seconds":600,"placed":510000,"changed":102000,"errors":0,"achievedPerSecond":850,` +
			`"place":{"p50Ms":5,"p99Ms":80},"freshness":{"p50Ms":60,"p99Ms":700},"maxOutboxPending":900,"maxConsumerLag":1200,` +
			`"drainSeconds":3.5,"day":3000000,"projectedDayMinutes":58.9,"verifyOK":true,` +
			`"timeline":[{"second":1,"placed":849,"placeP99Ms":70,"freshP99Ms":650,"outboxPending":300,"consumerLag":400},` +
			`{"second":2,"placed":851,"placeP99Ms":90,"freshP99Ms":720,"outboxPending":900,"consumerLag":1200}],` +
			`"wallSeconds":603.5,"cpuSpeedMicros":57.5,"cpu":{"seconds":{"mariadb":300,"order-command":150},"totalSeconds":450,"orders":510000,"wallSeconds":603.5},` +
			`"minutes":[{"minute":1,"placed":51000,"placeP99Ms":70,"freshP50Ms":40,"freshP99Ms":650},{"minute":2,"placed":51000,"placeP99Ms":90,"freshP50Ms":45,"freshP99Ms":1200}]}`,
		"k6-rest-steady.json": `{"metrics":{"iterations":{"rate":100},"http_reqs":{"rate":450},"http_req_failed":{"value":0.001},` +
			`"checks":{"value":0.999},"http_req_duration{kind:write}":{"med":4.5,"p(99)":40,"thresholds":{"p(99)<500":false}},` +
			`"http_req_duration{kind:read}":{"med":30,"p(99)":900,"thresholds":{"p(99)<1000":false}}}}`,
		"k6-grpc-steady.json": `{"metrics":{"iterations":{"count":6000,"rate":100},"dropped_iterations":{"count":12},"grpc_req_duration":{"count":25800},"checks":{"value":0.98,"thresholds":{"rate>0.99":true}},` +
			`"grpc_req_duration{kind:write}":{"med":3,"p(99)":30},"grpc_req_duration{kind:read}":{"med":25,"p(99)":800}}}`,
		"freshbench-every-order.json": `{"over":"grpc","readEvery":1,"phases":[{"rate":1000,"achievedPerSecond":993,"freshness":{"p50Ms":285,"p99Ms":1044}}]}`,
		"freshbench.json":             `{"over":"rest","readEvery":10,"phases":[{"rate":200,"achievedPerSecond":199,"freshness":{"p50Ms":27,"p99Ms":114}},{"rate":500,"achievedPerSecond":464,"freshness":{"p50Ms":52,"p99Ms":336}}],"backlog":{"perSecond":10986}}`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeProfile(t, filepath.Join(dir, "profiles", "order-command.pprof"))
	if err := report(dir); err != nil {
		t.Fatal(err)
	}
	summary, err := os.ReadFile(filepath.Join(dir, "summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| 32 | REST | 2600 | 10.0 | 44.0 | 74 % |", "34000 rows/s", "p99 19.1 ms", "75 % of writers alone",
		"| 500 (464) | 52.0 | 336.0 | 0 |", "10986 events/s", "over rest, every 10-th order read back",
		"over grpc, every order read back", "| 1000 (993) | 285.0 | 1044.0 | 0 |", "freshbench-every-order.png", "place-throughput-p99.png", "freshbench.png",
		"| orders placed | 510000 (850/s sustained), 102000 changed, 0 errors |", "| freshness p50 / p99 | 60.0 / 700.0 ms",
		"every order's document at its final version", "| raw write limit, same run | 2000 tx/s; sustained rate 42 % of it |",
		"| same backlog, Watermill's forwarder (github.com/ThreeDotsLabs/watermill v1.5.1; batch 1000) | 2000 rows/s (200000 rows) |", "**17.0×**", "| projected time for 3000000 orders | 59 min |", "day-backlog.png",
		"| wall time to the last order readable at its final version | 10.1 min |", "| freshness p99 per minute: worst / minutes at 1 s or more | 1200.0 ms / 1 of 2 |",
		"| CPU per order, every process | 0.882 ms (CPU speed: 57.5 µs per Ed25519 check) |", "| mariadb | 300.0 | 0.50 | 0.588 |", "day-minutes.png",
		"| rest-steady | 100 (0) | 450 | 4.5 / 40.0 | 30.0 / 900.0 | 0.10 % | 99.90 % | all held |",
		"### order-command", "flat%", "| grpc-steady | 100 (12) | 430 | 3.0 / 30.0 | 25.0 / 800.0 | – | 98.00 % | crossed: checks rate>0.99 |"} {
		if !strings.Contains(string(summary), want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
	for _, png := range []string{"place-throughput-p99.png", "freshbench.png", "freshbench-every-order.png", "day-throughput.png", "day-latency.png", "day-backlog.png", "day-minutes.png"} {
		if st, err := os.Stat(filepath.Join(dir, png)); err != nil || st.Size() < 1000 {
			t.Errorf("chart %s: %v", png, err)
		}
	}
	if err := report(t.TempDir()); err == nil {
		t.Error("a directory without results gave a report")
	}
}

// writeProfile writes a real CPU profile of some hashing.
func writeProfile(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(nil)
	for range 200000 {
		sum = sha256.Sum256(sum[:])
	}
	pprof.StopCPUProfile()
}
