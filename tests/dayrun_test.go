package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/shared/testinfra"
)

// The day-in-an-hour tool, in miniature, against the whole system: it
// places and changes orders at a fixed rate, samples the relay's backlog and
// the projector's lag, waits for both to catch up and has orderctl verify
// every order it placed. A pipeline that lost an event or left a document
// behind would fail verify, and the tool with it.
func TestDayRunVerifiesEveryOrder(t *testing.T) {
	testinfra.Integration(t)
	t.Parallel()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	p := startPipeline(t)
	projector := p.projector()
	dir := t.TempDir()
	bin := filepath.Join(dir, "dayrun")
	build := exec.Command("go", "build", "-o", bin, "./loadtest/cmd/dayrun")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building dayrun: %v\n%s", err, out)
	}
	outFile := filepath.Join(dir, "dayrun.json")
	cmd := exec.Command(bin, "-rate", "40", "-duration", "5s", "-raw-time", "1s", "-profile", "", "-fresh-every", "4",
		"-command", "http://"+p.command, "-query", "http://"+p.query, "-auth-key", p.auth.KeyFile,
		"-relay-metrics", p.relayHTTP, "-projector-metrics", projector.http, "-drain-timeout", "2m",
		"-topology", p.topologyFile, "-mongo", testinfra.MongoURI(), "-mongo-database", p.mongoDatabase, "-out", outFile)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dayrun: %v\n%s", err, out)
	}
	var res struct {
		Machine                 struct{ GOMAXPROCS int }
		Placed, Changed, Errors int
		VerifyOK                bool
		VerifyOutput            string
		Raw                     struct{ PerSecond float64 }
		Freshness               struct{ Ops int }
		Timeline                []struct {
			Placed int
		}
	}
	data, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	// One P by default: the load generator's own CPU is in the budget.
	if res.Machine.GOMAXPROCS != 1 {
		t.Errorf("the load generator ran with %d Ps, want 1 (-procs)", res.Machine.GOMAXPROCS)
	}
	if res.Placed != 200 || res.Errors != 0 {
		t.Errorf("placed %d orders with %d errors, want 200 and none:\n%s", res.Placed, res.Errors, out)
	}
	if !res.VerifyOK || !strings.Contains(res.VerifyOutput, "orders checked: 200") {
		t.Errorf("verify did not pass over the run's 200 orders:\n%s", res.VerifyOutput)
	}
	if res.Changed == 0 || res.Freshness.Ops != 50 || res.Raw.PerSecond <= 0 {
		t.Errorf("changed %d, freshness samples %d (want 50), raw limit %.0f/s", res.Changed, res.Freshness.Ops, res.Raw.PerSecond)
	}
	placed := 0
	for _, s := range res.Timeline {
		placed += s.Placed
	}
	if len(res.Timeline) < 5 || placed != 200 {
		t.Errorf("timeline of %d seconds counts %d orders, want at least 5 seconds and all 200", len(res.Timeline), placed)
	}
	if !strings.Contains(string(out), "| verify (every order of the run) | **all final** |") {
		t.Errorf("summary lacks the verify line:\n%s", out)
	}
}
