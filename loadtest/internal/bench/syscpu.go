package bench

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of the times in /proc/<pid>/stat: 100 on
// every Linux architecture Go runs on (the kernel fixes it for user space).
const clockTicks = 100

// Parts of the local system, named as scripts/cpu-per-process names them.
const (
	PartMariaDB       = "mariadb"
	PartKafka         = "kafka"
	PartReadStore     = "mongo-stand-in"
	PartMongod        = "mongod"
	PartCommand       = "order-command"
	PartQuery         = "order-query"
	PartProjector     = "order-projector"
	PartRelay         = "outbox-relay"
	PartLoadGenerator = "load-generator"
)

// partOf names the part of the local system a process belongs to by its
// command line, or "" for a process that is none of them. self is the
// benchmark's own pid: it is the load generator whatever its name.
func partOf(pid, self int, cmdline string) string {
	switch {
	case pid == self:
		return PartLoadGenerator
	case strings.Contains(cmdline, "mariadbd"):
		return PartMariaDB
	case strings.Contains(cmdline, "kafka.Kafka"):
		return PartKafka
	case strings.Contains(cmdline, "MongoWireServer"):
		return PartReadStore
	case strings.HasPrefix(cmdline, "mongod ") || strings.Contains(cmdline, "/mongod "):
		return PartMongod
	case strings.Contains(cmdline, "order-command"):
		return PartCommand
	case strings.Contains(cmdline, "order-query"):
		return PartQuery
	case strings.Contains(cmdline, "order-projector"):
		return PartProjector
	case strings.Contains(cmdline, "outbox-relay"):
		return PartRelay
	case strings.Contains(cmdline, "freshbench"), strings.Contains(cmdline, "dayrun"),
		strings.Contains(cmdline, "placebench"), strings.Contains(cmdline, "k6 "):
		return PartLoadGenerator
	}
	return ""
}

// CPUSnapshot is the CPU time (user + system, in seconds) every process of
// the local system had used at one moment, by pid.
type CPUSnapshot map[int]ProcessCPU

// ProcessCPU is one process's part and CPU seconds so far.
type ProcessCPU struct {
	Part    string
	Seconds float64
}

// SnapshotCPU reads /proc for the processes of the local system (the
// shards, Kafka, the read store, the services and the load generator).
func SnapshotCPU() (CPUSnapshot, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	snap := CPUSnapshot{}
	for _, dir := range dirs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil {
			continue // gone meanwhile
		}
		part := partOf(pid, self, string(bytes.ReplaceAll(raw, []byte{0}, []byte{' '})))
		if part == "" {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue
		}
		secs, err := statSeconds(string(stat))
		if err != nil {
			return nil, fmt.Errorf("%s/stat: %w", dir, err)
		}
		snap[pid] = ProcessCPU{Part: part, Seconds: secs}
	}
	return snap, nil
}

// statSeconds is utime + stime + cutime + cstime of a /proc/<pid>/stat
// line, in seconds. The command name in parentheses may hold spaces, so the
// fields are counted from its closing parenthesis (field 2).
func statSeconds(stat string) (float64, error) {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("no command name in %q", stat)
	}
	fields := strings.Fields(stat[end+1:]) // fields[0] is field 3 (state)
	if len(fields) < 15 {
		return 0, fmt.Errorf("too few fields in %q", stat)
	}
	var ticks float64
	for _, f := range fields[11:15] { // fields 14..17
		n, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return 0, fmt.Errorf("field %q: %w", f, err)
		}
		ticks += n
	}
	return ticks / clockTicks, nil
}

// CPUUse is the CPU time each part of the local system used between two
// snapshots, and per order.
type CPUUse struct {
	// Seconds is each part's CPU seconds; a process that started in between
	// counts from zero, one that ended in between is not counted.
	Seconds map[string]float64 `json:"seconds"`
	// TotalSeconds is the sum over the parts.
	TotalSeconds float64 `json:"totalSeconds"`
	// Orders the CPU time is divided by.
	Orders int `json:"orders"`
	// WallSeconds is the time between the snapshots.
	WallSeconds float64 `json:"wallSeconds"`
}

// CPUBetween is the CPU use from before to after, for orders orders.
func CPUBetween(before, after CPUSnapshot, orders int, wallSeconds float64) CPUUse {
	u := CPUUse{Seconds: map[string]float64{}, Orders: orders, WallSeconds: wallSeconds}
	for pid, a := range after {
		d := a.Seconds - before[pid].Seconds
		if b, ok := before[pid]; ok && b.Part != a.Part {
			d = a.Seconds // the pid was reused
		}
		if d > 0 {
			u.Seconds[a.Part] += d
			u.TotalSeconds += d
		}
	}
	return u
}

// MsPerOrder is a part's CPU milliseconds per order ("" for the total).
func (u CPUUse) MsPerOrder(part string) float64 {
	if u.Orders == 0 {
		return 0
	}
	s := u.TotalSeconds
	if part != "" {
		s = u.Seconds[part]
	}
	return 1000 * s / float64(u.Orders)
}

// Parts are the parts that used CPU, the largest first.
func (u CPUUse) Parts() []string {
	parts := make([]string, 0, len(u.Seconds))
	for p := range u.Seconds {
		parts = append(parts, p)
	}
	slices.SortFunc(parts, func(a, b string) int {
		if c := cmp.Compare(u.Seconds[b], u.Seconds[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return parts
}

// Markdown is the per-part table: CPU seconds, cores and ms per order.
func (u CPUUse) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "| process | CPU seconds | cores (of %.0f s) | CPU ms per order |\n|---|---|---|---|\n", u.WallSeconds)
	cores := func(s float64) float64 {
		if u.WallSeconds == 0 {
			return 0
		}
		return s / u.WallSeconds
	}
	for _, p := range u.Parts() {
		fmt.Fprintf(&b, "| %s | %.1f | %.2f | %.3f |\n", p, u.Seconds[p], cores(u.Seconds[p]), u.MsPerOrder(p))
	}
	fmt.Fprintf(&b, "| **total** | %.1f | %.2f | **%.3f** |\n", u.TotalSeconds, cores(u.TotalSeconds), u.MsPerOrder(""))
	return b.String()
}
