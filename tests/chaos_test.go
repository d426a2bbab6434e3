package tests

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/orderflow/orderflow/shared/testinfra"
)

// The fault-injection suite's CI subset (loadtest/cmd/chaos -short): a
// private system of its own (shards, broker, durable read store, two relays,
// two projectors) under steady load while a relay, a projector, the broker,
// a shard and the read store are killed and restarted one after another.
// Every order the command side confirmed must then be readable at its
// version, no requestId may have produced two orders, verify must be clean
// and the dead-letter topic empty. The system's own Prometheus, with the
// project's rules, must raise no alert during a clean window of steady load
// first, and then each fault's cause alert within two minutes, resolved
// after the recovery. The shared infrastructure is not touched.
func TestChaosShortLosesNoConfirmedOrder(t *testing.T) {
	testinfra.Integration(t)
	t.Parallel()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// The private state lives under the repository's .state (not the test's
	// temporary directory) so that the logs of a failed run stay for a look.
	if err := os.MkdirAll(filepath.Join(root, ".state"), 0o755); err != nil {
		t.Fatal(err)
	}
	state, err := os.MkdirTemp(filepath.Join(root, ".state"), "chaos-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			_ = os.RemoveAll(state)
		}
	})
	bin := filepath.Join(state, "chaos")
	build := exec.Command("go", "build", "-o", bin, "./loadtest/cmd/chaos")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building chaos: %v\n%s", err, out)
	}
	// The libraries scripts/infra fetched for the shared infrastructure are
	// copied rather than fetched again.
	seed := filepath.Dir(filepath.Dir(testinfra.KafkaLibs()))
	report := filepath.Join(state, "report.json")
	// The clean window (45 s) outlasts the alerts' 30 s `for`: an alert that
	// fires on a healthy system fires in it.
	cmd := exec.Command(bin, "-short", "-clean", "45s", "-rate", "20", "-state", filepath.Join(state, "system"), "-seed-libs", seed, "-out", report)
	cmd.Dir = root
	out, runErr := cmd.CombinedOutput()
	var exit *exec.ExitError
	if runErr != nil && !errors.As(runErr, &exit) {
		t.Fatalf("running chaos: %v\n%s", runErr, out)
	}

	var rep struct {
		OK           bool
		Confirmed    int
		Lost         []struct{ OrderNo int64 }
		Duplicates   []string
		NotOnShards  []string
		ReaskWrong   []string
		Reasked      int
		VerifyOK     bool
		VerifyOutput string
		DLQ          int64
		GaveUp       []string
		Faults       []struct {
			Name      string
			Converged bool
			Confirmed int
			Problem   string
			Alerts    []struct {
				Alert                         string
				Fired, Resolved               bool
				FiredDuringFailover           bool
				DetectSeconds, ResolveSeconds float64
			}
		}
		Clean *struct {
			Seconds float64
			Fired   []string
		}
		AlertPolls    int
		AlertProblems []string
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("no report (%v); chaos said:\n%s", err, out)
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("chaos report:\n%s", out)
	if runErr != nil || !rep.OK {
		t.Errorf("chaos failed (exit %v, ok %v)", runErr, rep.OK)
	}
	if len(rep.Lost) != 0 {
		t.Errorf("%d confirmed orders lost: %v", len(rep.Lost), rep.Lost)
	}
	if len(rep.Duplicates) != 0 || len(rep.NotOnShards) != 0 || len(rep.ReaskWrong) != 0 || rep.Reasked == 0 {
		t.Errorf("duplicates %v, not on their shard %v, asked again wrong %v (of %d)", rep.Duplicates, rep.NotOnShards, rep.ReaskWrong, rep.Reasked)
	}
	if !rep.VerifyOK {
		t.Errorf("orderctl verify:\n%s", rep.VerifyOutput)
	}
	if rep.DLQ != 0 {
		t.Errorf("%d events on the DLQ", rep.DLQ)
	}
	if len(rep.GaveUp) != 0 {
		t.Errorf("%d orders never confirmed", len(rep.GaveUp))
	}
	if rep.Clean == nil || rep.Clean.Seconds < 45 || len(rep.Clean.Fired) != 0 {
		t.Errorf("clean window %+v, want 45 s of load raising no alert", rep.Clean)
	}
	if rep.AlertPolls == 0 || len(rep.AlertProblems) != 0 {
		t.Errorf("alerts polled %d times, problems %v", rep.AlertPolls, rep.AlertProblems)
	}
	want := []struct{ fault, alert string }{
		{"relay-kill", "OutboxShardUnowned"}, {"projector-kill", "ProjectorNotConsuming"}, {"kafka-kill", "KafkaUnreachable"},
		{"shard-kill", "ShardUnreachable{shard=shard-1}"}, {"store-kill", "ReadStoreUnreachable"},
	}
	if len(rep.Faults) != len(want) {
		t.Fatalf("%d faults ran, want %v", len(rep.Faults), want)
	}
	for i, f := range rep.Faults {
		if f.Name != want[i].fault || !f.Converged || f.Confirmed == 0 || f.Problem != "" {
			t.Errorf("fault %d: %+v, want %s converged with orders confirmed during it", i, f, want[i].fault)
		}
		if len(f.Alerts) != 1 || f.Alerts[0].Alert != want[i].alert {
			t.Errorf("%s: alerts %+v, want %s", f.Name, f.Alerts, want[i].alert)
			continue
		}
		a := f.Alerts[0]
		if !a.Fired || a.DetectSeconds > 120 || !a.Resolved || a.ResolveSeconds > 180 || a.FiredDuringFailover {
			t.Errorf("%s: %+v, want %s fired within 120 s (not during a fail-over) and resolved within 180 s of the recovery",
				f.Name, a, a.Alert)
		}
	}
	if rep.Confirmed < 1000 {
		t.Errorf("%d orders confirmed, want the load of the whole run (at least 1000)", rep.Confirmed)
	}
}
