package tests

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/orderflow/orderflow/shared/testinfra"
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

// scripts/shard-cpu-by-client attributes the CPU a shard spent while a
// command ran to the client process of each connection: here this test's
// own, which holds a connection and keeps the shard busy on it meanwhile.
func TestShardCPUByClientScript(t *testing.T) {
	t.Parallel()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	topo := testinfra.Shards(t, 1)
	port := regexp.MustCompile(`tcp\(127\.0\.0\.1:(\d+)\)`).FindStringSubmatch(topo.Shards[0].DSN)
	if port == nil {
		t.Fatalf("no local TCP port in %s", topo.Shards[0].DSN)
	}
	conn, err := testinfra.DB(t, topo.Shards[0].DSN).Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	// The command runs until the test has kept the shard busy; the script
	// looks at the connections before and after it.
	dir := t.TempDir()
	started, done := filepath.Join(dir, "started"), filepath.Join(dir, "done")
	cmd := exec.Command(filepath.Join(root, "scripts", "shard-cpu-by-client"), "sh", "-c",
		`touch "$1"; while [ ! -e "$2" ]; do sleep 0.05; done`, "sh", started, done)
	cmd.Env = append(os.Environ(), "MYSQL_PORTS="+port[1])
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testinfra.Eventually(t, 30*time.Second, func() bool { _, err := os.Stat(started); return err == nil }, "the command never started")
	if _, err := conn.ExecContext(context.Background(), "DO BENCHMARK(5000000, MD5('orderflow'))"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	// ss names a process by its command name, at most 15 characters.
	name := filepath.Base(os.Args[0])
	name = name[:min(len(name), 15)]
	row := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` +([0-9.]+) s`).FindStringSubmatch(out.String())
	if row == nil || row[1] == "0.00" {
		t.Errorf("no shard CPU attributed to this test's process %q:\n%s", name, out.String())
	}
	if !regexp.MustCompile(`(?m)^total +[0-9.]+ s$`).MatchString(out.String()) {
		t.Errorf("no total line:\n%s", out.String())
	}
}
