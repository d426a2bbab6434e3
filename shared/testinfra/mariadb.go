package testinfra

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orderflow/orderflow/shared/freeport"
	"github.com/orderflow/orderflow/shared/shard"
)

// MariaDB is a private MariaDB server owned by one test, for tests that stop
// or kill a shard: the shared shard servers must stay up for other tests.
type MariaDB struct {
	t       testing.TB
	binary  string
	dataDir string
	port    int
	logPath string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// StartMariaDB initialises a data directory in a temporary folder, starts a
// server on a free loopback port, waits until it answers, and stops it when
// the test ends.
func StartMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	Integration(t)
	binary := findBinary("mariadbd")
	installer := findBinary("mariadb-install-db")
	if binary == "" || installer == "" {
		t.Fatal("testinfra: mariadbd or mariadb-install-db not found; run scripts/infra up, which installs MariaDB")
	}
	dir := t.TempDir()
	m := &MariaDB{t: t, binary: binary, dataDir: filepath.Join(dir, "data"), port: freePort(t), logPath: filepath.Join(dir, "mariadb.err")}
	// Each server gets its own temporary directory: bootstraps running side
	// by side in one /tmp collide on their temporary table names.
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	install := exec.Command(installer, "--user=root", "--datadir="+m.dataDir,
		"--auth-root-authentication-method=normal", "--skip-test-db")
	install.Env = append(os.Environ(), "TMPDIR="+tmp)
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("testinfra: mariadb-install-db: %v\n%s", err, out)
	}
	t.Cleanup(m.Kill)
	m.Start()
	return m
}

func findBinary(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func freePort(t testing.TB) int { return FreePorts(t, 1)[0] }

// FreePorts returns n free loopback ports for servers the test starts as
// child processes, held for the test (see freeport) and released when it
// ends.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := freeport.New()
	t.Cleanup(ports.Close)
	out := make([]int, n)
	for i := range out {
		p, err := ports.Port()
		if err != nil {
			t.Fatalf("testinfra: %v", err)
		}
		out[i] = p
	}
	return out
}

// FreeRun returns the first of n consecutive free loopback ports, held as
// FreePorts holds its ports.
func FreeRun(t testing.TB, n int) int {
	t.Helper()
	ports := freeport.New()
	t.Cleanup(ports.Close)
	base, err := ports.Run(n)
	if err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	return base
}

// FreeOffset returns an offset under which every one of ports, moved by
// it, is free, held as FreePorts holds its ports: for a script whose ports
// are fixed and move together.
func FreeOffset(t testing.TB, ports ...int) int {
	t.Helper()
	held := freeport.New()
	t.Cleanup(held.Close)
	d, err := held.Offset(ports...)
	if err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	return d
}

// ServerDSN is the DSN of the server without a database.
func (m *MariaDB) ServerDSN() string { return "root@tcp(127.0.0.1:" + strconv.Itoa(m.port) + ")/" }

// Start starts the server (again) on the same data directory and port and
// waits until it answers a query.
func (m *MariaDB) Start() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return
	}
	cmd := exec.Command(m.binary, "--no-defaults", "--user=root", "--datadir="+m.dataDir,
		"--socket="+filepath.Join(filepath.Dir(m.dataDir), "mysqld.sock"),
		"--port="+strconv.Itoa(m.port), "--bind-address=127.0.0.1",
		"--pid-file="+filepath.Join(filepath.Dir(m.dataDir), "mysqld.pid"),
		"--log-error="+m.logPath, "--skip-name-resolve", "--innodb-buffer-pool-size=32M",
		"--tmpdir="+filepath.Join(filepath.Dir(m.dataDir), "tmp"),
		"--transaction-isolation=READ-COMMITTED")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		m.t.Fatalf("testinfra: starting mariadbd: %v", err)
	}
	m.cmd = cmd
	db, err := shard.OpenDB(m.ServerDSN(), TestPool())
	if err != nil {
		m.t.Fatalf("testinfra: %v", err)
	}
	defer db.Close()
	if err := answersWithin(30*time.Second, func(ctx context.Context) error { return db.PingContext(ctx) }); err != nil {
		log, _ := os.ReadFile(m.logPath)
		m.t.Fatalf("testinfra: private mariadbd did not answer within 30 s: %v\n%s", err, log)
	}
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it
// (a server frozen by Stop is killed as well).
func (m *MariaDB) Kill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	_ = m.cmd.Wait()
	m.cmd = nil
}

// Stop suspends the server with SIGSTOP: it keeps its port and accepts
// connections (the kernel does) but answers nothing, as a hung server would.
// Continue resumes it; a server left stopped is still killed when the test
// ends.
func (m *MariaDB) Stop() { m.signal(syscall.SIGSTOP) }

// Continue resumes a server suspended by Stop.
func (m *MariaDB) Continue() { m.signal(syscall.SIGCONT) }

func (m *MariaDB) signal(sig syscall.Signal) {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		m.t.Fatalf("testinfra: sending %s to a private mariadbd that is not running", sig)
	}
	if err := m.cmd.Process.Signal(sig); err != nil {
		m.t.Fatalf("testinfra: sending %s to mariadbd: %v", sig, err)
	}
}
