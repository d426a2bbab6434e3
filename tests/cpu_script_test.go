package tests

import (
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// scripts/cpu-per-process attributes the CPU time used during a command to
// the parts of the system by command line, and passes the command's exit
// status through.
func TestCPUPerProcessScript(t *testing.T) {
	t.Parallel()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// A busy process whose command line names order-query stands in for the
	// service; it spins until the test ends.
	busy := exec.Command("sh", "-c", "while :; do :; done", "order-query")
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = busy.Process.Kill(); _ = busy.Wait() })

	cmd := exec.Command(filepath.Join(root, "scripts", "cpu-per-process"), "sh", "-c",
		"i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; exit 3")
	out, err := cmd.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("exit %v, want the command's status 3:\n%s", err, out)
	}
	row := regexp.MustCompile(`(?m)^\| order-query \| ([0-9.]+) \|`).FindSubmatch(out)
	if row == nil || string(row[1]) == "0.0" {
		t.Errorf("no CPU attributed to the busy order-query process:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^\| total \| [0-9.]+ \| [0-9.]+ \|$`).Match(out) {
		t.Errorf("no total line:\n%s", out)
	}
}
