package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/orderflow/orderflow/shared/testinfra"
)

// ruleFile is the part of a Prometheus rule file the tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readRuleFiles(t *testing.T) map[string]ruleFile {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	paths, _ := filepath.Glob(filepath.Join(root, "deploy", "prometheus", "rules", "*.yml"))
	if len(paths) == 0 {
		t.Fatal("no rule files in deploy/prometheus/rules")
	}
	out := map[string]ruleFile{}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var f ruleFile
		if err := yaml.Unmarshal(raw, &f); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out[p] = f
	}
	return out
}

// The rules parse and pass their unit tests (promtool test rules): each
// alert fires on its fault and stays silent on a healthy system.
func TestPrometheusRulesPassTheirUnitTests(t *testing.T) {
	t.Parallel()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "deploy", "prometheus")
	if out, err := exec.Command("promtool", "check", "config", filepath.Join(dir, "prometheus.yml")).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	tests, _ := filepath.Glob(filepath.Join(dir, "tests", "*.yml"))
	if len(tests) == 0 {
		t.Fatal("no rule tests in deploy/prometheus/tests")
	}
	cmd := exec.Command("promtool", append([]string{"test", "rules"}, tests...)...)
	cmd.Dir = filepath.Join(dir, "tests")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// Every alert has an owner, a severity, and a runbook section that exists
// (the anchor of a heading in the runbook it names); and every alert is
// exercised by a rule test.
func TestEveryAlertHasAnOwnerAndARunbookSection(t *testing.T) {
	t.Parallel()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]map[string]bool{}
	anchorOf := func(heading string) string {
		a := strings.ToLower(strings.TrimSpace(heading))
		a = regexp.MustCompile(`[^a-z0-9 _-]`).ReplaceAllString(a, "")
		return strings.ReplaceAll(a, " ", "-")
	}
	sections := func(doc string) map[string]bool {
		if anchors[doc] == nil {
			raw, err := os.ReadFile(filepath.Join(root, doc))
			if err != nil {
				t.Fatalf("runbook %s: %v", doc, err)
			}
			anchors[doc] = map[string]bool{}
			for _, line := range strings.Split(string(raw), "\n") {
				if h, ok := strings.CutPrefix(line, "## "); ok {
					anchors[doc][anchorOf(h)] = true
				}
			}
		}
		return anchors[doc]
	}
	var ruleTests strings.Builder
	testFiles, _ := filepath.Glob(filepath.Join(root, "deploy", "prometheus", "tests", "*.yml"))
	for _, p := range testFiles {
		raw, _ := os.ReadFile(p)
		ruleTests.Write(raw)
	}
	sloNames := regexp.MustCompile(`slo: ([a-z_]+)`).FindAllStringSubmatch(ruleTests.String(), -1)
	for path, f := range readRuleFiles(t) {
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				name := fmt.Sprintf("%s: %s", filepath.Base(path), r.Alert)
				if r.Labels["owner"] == "" || (r.Labels["severity"] != "page" && r.Labels["severity"] != "ticket") {
					t.Errorf("%s: labels %v, want an owner and severity page or ticket", name, r.Labels)
				}
				if !strings.Contains(ruleTests.String(), "alertname: "+r.Alert+"\n") {
					t.Errorf("%s: no rule test evaluates it", name)
				}
				doc, anchor, ok := strings.Cut(r.Annotations["runbook"], "#")
				if !ok {
					t.Errorf("%s: runbook annotation %q does not name a section", name, r.Annotations["runbook"])
					continue
				}
				// An SLO alert names one section per SLO ({{ $labels.slo }}).
				wanted := []string{anchor}
				if strings.Contains(anchor, "{{ $labels.slo }}") {
					wanted = nil
					for _, m := range sloNames {
						wanted = append(wanted, strings.ReplaceAll(anchor, "{{ $labels.slo }}", m[1]))
					}
				}
				for _, a := range wanted {
					if !sections(doc)[a] {
						t.Errorf("%s: runbook section %s#%s does not exist", name, doc, a)
					}
				}
			}
		}
	}
}

// The Prometheus that scripts/infra starts has loaded every rule group and
// scrapes every service.
func TestLocalPrometheusLoadsTheRulesAndScrapesEveryService(t *testing.T) {
	testinfra.Integration(t)
	t.Parallel()
	base := os.Getenv("ORDERFLOW_PROMETHEUS_URL")
	if base == "" {
		base = "http://127.0.0.1:9095"
	}
	get := func(path string, v any) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("Prometheus at %s: %v (scripts/infra up starts it)", base, err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	var rules struct {
		Data struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Name   string `json:"name"`
					Health string `json:"health"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	get("/api/v1/rules", &rules)
	loaded := map[string]int{}
	for _, g := range rules.Data.Groups {
		loaded[g.Name] = len(g.Rules)
		for _, r := range g.Rules {
			if r.Health == "err" {
				t.Errorf("rule %s in group %s fails to evaluate", r.Name, g.Name)
			}
		}
	}
	for path, f := range readRuleFiles(t) {
		for _, g := range f.Groups {
			if loaded[g.Name] != len(g.Rules) {
				t.Errorf("%s: group %s has %d rules loaded, want %d", filepath.Base(path), g.Name, loaded[g.Name], len(g.Rules))
			}
		}
	}
	var targets struct {
		Data struct {
			ActiveTargets []struct {
				Labels map[string]string `json:"labels"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	get("/api/v1/targets", &targets)
	jobs := map[string]bool{}
	for _, tg := range targets.Data.ActiveTargets {
		jobs[tg.Labels["job"]] = true
	}
	for _, job := range []string{"order-command", "order-query", "outbox-relay", "order-projector"} {
		if !jobs[job] {
			t.Errorf("Prometheus does not scrape %s (targets: %v)", job, jobs)
		}
	}
}

// Every PromQL expression of the dashboard parses (the
// local Prometheus evaluates it; a syntax error is a 400 bad_data; the
// rules are checked by promtool).
func TestDashboardExpressionsParse(t *testing.T) {
	testinfra.Integration(t)
	t.Parallel()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "deploy", "grafana", "dashboards", "orderflow.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dashboard struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dashboard); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	exprs := map[string]string{}
	for _, p := range dashboard.Panels {
		for _, tg := range p.Targets {
			exprs[tg.Expr] = "dashboard panel " + p.Title
		}
	}
	if len(exprs) < 10 {
		t.Fatalf("the dashboard has %d queries, want its panels' queries", len(exprs))
	}
	base := os.Getenv("ORDERFLOW_PROMETHEUS_URL")
	if base == "" {
		base = "http://127.0.0.1:9095"
	}
	for expr, where := range exprs {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/query?query="+url.QueryEscape(expr), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatalf("Prometheus at %s: %v", base, err)
		}
		var body struct {
			Status string `json:"status"`
			Error  string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		cancel()
		if body.Status != "success" {
			t.Errorf("%s: %q does not parse: %s", where, expr, body.Error)
		}
	}
}
