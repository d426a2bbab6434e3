package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// Process is a program of this repository that the benchmark built and runs
// next to itself.
type Process struct {
	// Bin is the built binary (removed by Stop), Log its output.
	Bin, Log string
	cmd      *exec.Cmd
	done     chan struct{}
}

// StartProcess builds the Go package pkg (a path from the repository root,
// where the tools run) into dir, starts it with args and env added to this
// process's environment, its output in dir/<name>.log, and waits up to 30 s
// for readyURL to answer 200.
func StartProcess(ctx context.Context, dir, pkg string, args, env []string, readyURL string) (*Process, error) {
	bin, err := Build(ctx, "", pkg, filepath.Join(dir, filepath.Base(pkg)))
	if err != nil {
		return nil, err
	}
	return StartBinary(bin, bin+".log", args, env, readyURL)
}

// Build builds the Go package pkg of the source tree at src (the current
// directory when empty) into bin.
func Build(ctx context.Context, src, pkg, bin string) (string, error) {
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s in %q: %v\n%s", pkg, src, err, out)
	}
	return bin, nil
}

// StartBinary starts bin with args and env added to this process's
// environment, its output in logPath, and waits up to 30 s for readyURL to
// answer 200.
func StartBinary(bin, logPath string, args, env []string, readyURL string) (*Process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{Bin: bin, Log: logFile.Name(), cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(readyURL)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if time.Now().After(deadline) || p.Exited() {
			p.Stop()
			return nil, fmt.Errorf("%s not ready within 30 s:\n%s", bin, p.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// CPUSeconds is the user and system CPU time the process used so far.
func (p *Process) CPUSeconds() (float64, error) {
	proc, err := procfs.NewProc(p.cmd.Process.Pid)
	if err != nil {
		return 0, fmt.Errorf("cpu of %s: %w", p.Bin, err)
	}
	stat, err := proc.Stat()
	if err != nil {
		return 0, fmt.Errorf("cpu of %s: %w", p.Bin, err)
	}
	return stat.CPUTime(), nil
}

func (p *Process) Output() string {
	out, _ := os.ReadFile(p.Log)
	return string(out)
}

// Stop ends the program (SIGTERM, after 20 s SIGKILL); stopping it again
// does nothing. The log stays for a look afterwards, the binary (tens of
// megabytes a run) goes.
func (p *Process) Stop() {
	if !p.Exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	_ = os.Remove(p.Bin)
}
