package tests

import (
	"encoding/json"
	"fmt"
	"io"
	stdhttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/orderflow/orderflow/shared/testinfra"
)

// promQLRuleFile is the part of a rule file holding PromQL.
type promQLRuleFile struct {
	Groups []struct {
		Rules []struct {
			Alert  string `yaml:"alert"`
			Record string `yaml:"record"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// metricUse is one metric name some PromQL selects, and where.
type metricUse struct {
	name, where string
}

// metricNames returns the metric names expr selects, in order of first use.
func metricNames(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if name == "" && m.Name == model.MetricNameLabel && m.Type.String() == "=" {
				name = m.Value
			}
		}
		if name != "" && !slices.Contains(out, name) {
			out = append(out, name)
		}
		return nil
	})
	return out, nil
}

// The extractor finds the selected metrics, not functions, keywords,
// labels or label values, nor names inside strings.
func TestMetricNamesExtractor(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, expr string
		want       []string
	}{
		{"plain", `up`, []string{"up"}},
		{"functions and aggregation", `sum by (shard) (rate(orderflow_outbox_published_total{kind="row"}[1m]))`, []string{"orderflow_outbox_published_total"}},
		{"histogram quantile", `histogram_quantile(0.99, sum by (le) (rate(orderflow_projector_lag_seconds_bucket[5m])))`, []string{"orderflow_projector_lag_seconds_bucket"}},
		{"set operators and subquery", "sum(orderflow_projector_consumer_lag) > 1000\nand\nderiv(sum(orderflow_projector_consumer_lag)[5m:15s]) > 0", []string{"orderflow_projector_consumer_lag"}},
		{"unless on, over_time", `max by (shard) (max_over_time(orderflow_outbox_shard_owned[1h])) unless on (shard) (max by (shard) (orderflow_outbox_shard_owned) == 1)`, []string{"orderflow_outbox_shard_owned"}},
		{"recording rules and vector()", `sum by (slo) (orderflow:slo_bad_events:rate5m) / (orderflow:slo_events:rate5m > 0) or vector(0)`, []string{"orderflow:slo_bad_events:rate5m", "orderflow:slo_events:rate5m"}},
		{"__name__ matcher", `{__name__="grpc_server_handled_total", grpc_code="OK"}`, []string{"grpc_server_handled_total"}},
		{"label value that looks like a metric", `absent(up{job="orderflow_outbox_pending"} == 1)`, []string{"up"}},
		{"two metrics", `a_total - b_bucket{le="0.3"}`, []string{"a_total", "b_bucket"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := metricNames(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("metricNames(%q) = %v, want %v", tc.expr, got, tc.want)
			}
		})
	}
}

// usedMetrics lists every metric the dashboard's and the rules' PromQL
// select, but the recording rules' own series (orderflow:*) and up, which
// Prometheus makes.
func usedMetrics(t *testing.T) []metricUse {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var uses []metricUse
	add := func(where, expr string) {
		names, err := metricNames(expr)
		if err != nil {
			t.Fatalf("%s: %v\n%s", where, err, expr)
		}
		for _, n := range names {
			if n != "up" && !strings.HasPrefix(n, "orderflow:") {
				uses = append(uses, metricUse{name: n, where: where})
			}
		}
	}
	rules, _ := filepath.Glob(filepath.Join(root, "deploy", "prometheus", "rules", "*.yml"))
	if len(rules) == 0 {
		t.Fatal("no rule files in deploy/prometheus/rules")
	}
	for _, p := range rules {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var f promQLRuleFile
		if err := yaml.Unmarshal(raw, &f); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				add(fmt.Sprintf("%s (%s%s)", filepath.Base(p), r.Alert, r.Record), r.Expr)
			}
		}
	}
	raw, err := os.ReadFile(filepath.Join(root, "deploy", "grafana", "dashboards", "orderflow.json"))
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string                  `json:"title"`
		Targets []struct{ Expr string } `json:"targets"`
		Panels  []json.RawMessage       `json:"panels"`
	}
	var walk func(raw []json.RawMessage)
	walk = func(raw []json.RawMessage) {
		for _, r := range raw {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatal(err)
			}
			for _, target := range p.Targets {
				if target.Expr != "" {
					add("dashboard panel "+p.Title, target.Expr)
				}
			}
			walk(p.Panels)
		}
	}
	var dash struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	walk(dash.Panels)
	return uses
}

// exported tells whether families (a /metrics scrape) hold the series
// PromQL selects as name: the family itself, or the _bucket/_count/_sum
// series of a histogram (_count/_sum of a summary), or a counter whose
// family is named without _total (OpenMetrics).
func exported(families map[string]*dto.MetricFamily, name string) bool {
	if f, ok := families[name]; ok && len(f.GetMetric()) > 0 {
		return true
	}
	for suffix, types := range map[string][]dto.MetricType{
		"_bucket": {dto.MetricType_HISTOGRAM},
		"_count":  {dto.MetricType_HISTOGRAM, dto.MetricType_SUMMARY},
		"_sum":    {dto.MetricType_HISTOGRAM, dto.MetricType_SUMMARY},
		"_total":  {dto.MetricType_COUNTER},
	} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		if f, ok := families[base]; ok && len(f.GetMetric()) > 0 && slices.Contains(types, f.GetType()) {
			return true
		}
	}
	return false
}

func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := stdhttp.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scraping %s: %v", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parsing %s/metrics: %v", addr, err)
	}
	return families
}

// Every metric the dashboard and the alert rules name is exported by the
// running services once an order went through, so renaming one fails here
// instead of leaving a panel blank or an alert silent.
func TestDashboardAndRuleMetricsAreExported(t *testing.T) {
	testinfra.Integration(t)
	t.Parallel()
	uses := usedMetrics(t)
	if len(uses) < 10 {
		t.Fatalf("only %d metric uses found in the dashboard and rules: %v", len(uses), uses)
	}
	p := startPipeline(t)
	projector := p.projector()
	no := p.place("metrics-1", "user-m", "shop-m")
	testinfra.Eventually(t, 30*time.Second, func() bool {
		code, body := p.do("GET", fmt.Sprintf("http://%s/v1/orders/%s?minVersion=1", p.query, no), "")
		return code == 200 && body["stale"] == false
	}, "order %s never reached the read side", no)

	services := map[string]string{"order-command": p.command, "outbox-relay": p.relayHTTP, "order-projector": projector.http, "order-query": p.query}
	all := map[string]*dto.MetricFamily{}
	for _, addr := range services {
		for name, f := range scrape(t, addr) {
			if prev, ok := all[name]; ok {
				f.Metric = append(f.Metric, prev.GetMetric()...)
			}
			all[name] = f
		}
	}
	// The repair progress series come from orderctl while a repair runs.
	for name, f := range scrapeRepair(t, p, no) {
		all[name] = f
	}
	var missing []string
	for _, u := range uses {
		if !exported(all, u.name) {
			missing = append(missing, u.name+" (used in "+u.where+")")
		}
	}
	slices.Sort(missing)
	missing = slices.Compact(missing)
	if len(missing) > 0 {
		t.Errorf("metrics named in PromQL that no service exports:\n  %s", strings.Join(missing, "\n  "))
	}

	// The label values the alerts select exist from the start, at 0.
	for _, want := range []struct{ metric, label, value string }{
		{"orderflow_outbox_publish_failures_total", "kind", "transient"},
		{"orderflow_outbox_publish_failures_total", "kind", "row"},
		{"orderflow_projector_events_total", "result", "dead_lettered"},
		{"orderflow_panics_recovered_total", "protocol", "grpc"},
		{"grpc_server_handled_total", "grpc_method", "CancelOrder"},
	} {
		if !hasLabel(all[want.metric], want.label, want.value) {
			t.Errorf("%s has no series with %s=%q", want.metric, want.label, want.value)
		}
	}
}

func hasLabel(f *dto.MetricFamily, label, value string) bool {
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == value {
				return true
			}
		}
	}
	return false
}

// scrapeRepair runs `orderctl readmodel rebuild --orders no
// --metrics-listen` against the pipeline (the document is current, so it
// writes nothing) and scrapes its progress series once the run ended.
func scrapeRepair(t *testing.T, p *pipeline, no string) map[string]*dto.MetricFamily {
	t.Helper()
	metrics := addr(t)
	cmd := exec.Command(filepath.Join(binaries(t), "orderctl"), "readmodel", "rebuild", "--orders", no,
		"--metrics-listen", metrics, "--metrics-linger", "2m", "--topology", p.topologyFile,
		"--mongo", testinfra.MongoURI(), "--mongo-database", p.mongoDatabase, "--brokers", strings.Join(testinfra.KafkaBrokers(), ","),
		"--external-topic", p.externalTopic, "--dlq-topic", p.dlqTopic)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var families map[string]*dto.MetricFamily
	testinfra.Eventually(t, 60*time.Second, func() bool {
		resp, err := stdhttp.Get("http://" + metrics + "/metrics")
		if err != nil {
			return false // not listening yet
		}
		resp.Body.Close()
		families = scrape(t, metrics)
		running := families["orderflow_repair_running"].GetMetric()
		return len(running) == 1 && running[0].GetGauge().GetValue() == 0
	}, "orderctl's rebuild never reported its end on %s:\n%s", metrics, &out)
	// Interrupting it ends the linger at once, as Ctrl-C does.
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-exited:
		if err != nil || !strings.Contains(out.String(), "rebuild: orders=1 ") {
			t.Errorf("orderctl readmodel rebuild: %v\n%s", err, &out)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Errorf("orderctl did not stop on SIGINT during its metrics linger")
	}
	return families
}
