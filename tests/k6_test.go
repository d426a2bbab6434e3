package tests

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/shared/testinfra"
)

// The k6 scripts run against the whole system (a short smoke run each),
// every user and shop with its own token from the tokens tool's file:
// every check and threshold must hold, or k6 exits non-zero (a call
// without a valid token, or with the wrong caller's, is refused).
func TestK6SmokeRuns(t *testing.T) {
	testinfra.Integration(t)
	t.Parallel()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	p := startPipeline(t)
	p.projector()
	tokens := filepath.Join(t.TempDir(), "k6-tokens.json")
	gen := exec.Command("go", "run", "./loadtest/cmd/tokens", "-auth-key", p.auth.KeyFile, "-users", "50", "-shops", "10", "-out", tokens)
	gen.Dir = root
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("writing the tokens: %v\n%s", err, out)
	}
	for _, script := range []string{"rest.js", "grpc.js"} {
		t.Run(script, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(root, "scripts", "k6"), "run", "--no-color", "--quiet",
				"-e", "SCENARIO=smoke", "-e", "COMMAND_URL=http://"+p.command, "-e", "QUERY_URL=http://"+p.query,
				"-e", "COMMAND_GRPC="+p.commandGRPC, "-e", "QUERY_GRPC="+p.queryGRPC, "-e", "TOKENS="+tokens, script)
			cmd.Dir = filepath.Join(root, "loadtest", "k6")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("k6 run %s: %v\n%s", script, err, out)
			}
			if !regexp.MustCompile(`checks_succeeded\.*: 100\.00% \d+ out of \d+`).Match(out) || strings.Contains(string(out), "✗") {
				t.Errorf("k6 %s: a check failed or no checks ran:\n%s", script, out)
			}
		})
	}
}
