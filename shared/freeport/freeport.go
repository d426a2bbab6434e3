// Package freeport hands out loopback ports for the servers a test or a
// test harness starts as child processes, which bind them later.
//
// A port is drawn from below the kernel's ephemeral range: a port from the
// ephemeral range (what listening on :0 gives) can be taken between being
// picked and being bound, or while its server is killed and restarted, by
// the local end of any outgoing connection on the machine. Below the range
// only another picker can collide, so every port handed out is also locked
// (flock on a file per port) until the Ports is closed or its process
// ends: neither this process nor another one using this package hands it
// out twice meanwhile.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// floor is the lowest port handed out: above the well-known ports and the
// fixed ports of the project's shared infrastructure (MariaDB 3307+, Kafka
// 19092/19093, MongoDB 27017, Prometheus 9095).
const floor = 20000

// Ports hands out ports and holds their locks.
type Ports struct {
	dir       string
	low, high int // [low, high)

	mu   sync.Mutex
	held map[int]*os.File
}

// New returns a Ports whose locks live in the system's temporary directory.
func New() *Ports {
	return &Ports{dir: filepath.Join(os.TempDir(), "orderflow-ports"), low: floor, high: ephemeralLow(), held: map[int]*os.File{}}
}

// Port is one free port.
func (p *Ports) Port() (int, error) { return p.Run(1) }

// Addr is a free port on 127.0.0.1 as host:port.
func (p *Ports) Addr() (string, error) {
	port, err := p.Port()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}

// Run returns the first of n consecutive free ports, all locked.
func (p *Ports) Run(n int) (int, error) {
	if n < 1 || p.high-p.low < n {
		return 0, fmt.Errorf("freeport: no run of %d ports in [%d, %d)", n, p.low, p.high)
	}
	return p.lockSet(func() (int, []int) {
		base := p.low + rand.IntN(p.high-p.low-n+1)
		run := make([]int, n)
		for i := range run {
			run[i] = base + i
		}
		return base, run
	})
}

// Offset returns an offset d under which every one of ports, moved by d,
// is free, and locks the moved ports: for a tool whose ports are fixed and
// move together (scripts/services' SERVICES_PORT_OFFSET).
func (p *Ports) Offset(ports ...int) (int, error) {
	if len(ports) == 0 {
		return 0, errors.New("freeport: Offset needs at least one port")
	}
	lo, hi := slices.Min(ports), slices.Max(ports)
	if p.high-p.low <= hi-lo {
		return 0, fmt.Errorf("freeport: ports %d to %d do not fit in [%d, %d)", lo, hi, p.low, p.high)
	}
	return p.lockSet(func() (int, []int) {
		d := p.low - lo + rand.IntN(p.high-p.low-(hi-lo))
		moved := make([]int, len(ports))
		for i, port := range ports {
			moved[i] = port + d
		}
		return d, moved
	})
}

// lockSet draws candidate sets of ports until one is free throughout, locks
// it and returns its key (what the caller hands back: a base, an offset).
func (p *Ports) lockSet(draw func() (key int, ports []int)) (int, error) {
	if err := os.MkdirAll(p.dir, 0o777); err != nil {
		return 0, fmt.Errorf("freeport: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for range 200 {
		key, ports := draw()
		var taken []int
		for _, port := range ports {
			if !p.take(port) {
				break
			}
			taken = append(taken, port)
		}
		if len(taken) == len(ports) {
			return key, nil
		}
		for _, port := range taken {
			p.release(port)
		}
	}
	return 0, errors.New("freeport: no free set of ports after 200 tries")
}

// take locks port and checks that nothing listens on it; p.mu is held.
func (p *Ports) take(port int) bool {
	if p.held[port] != nil {
		return false
	}
	f, err := os.OpenFile(filepath.Join(p.dir, strconv.Itoa(port)+".lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return false
	}
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		_ = f.Close()
		return false
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		_ = f.Close()
		return false
	}
	_ = l.Close()
	p.held[port] = f
	return true
}

// release unlocks port; p.mu is held.
func (p *Ports) release(port int) {
	if f := p.held[port]; f != nil {
		_ = f.Close()
		delete(p.held, port)
	}
}

// Close releases every port handed out.
func (p *Ports) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for port := range p.held {
		p.release(port)
	}
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default 32768 where it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 32768
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil || low <= floor {
		return 32768
	}
	return low
}
