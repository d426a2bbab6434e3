package freeport

import (
	"net"
	"os"
	"strconv"
	"testing"
)

// Ports handed out are below the ephemeral range, never handed out twice
// while held (by this Ports or another), and free again once closed.
func TestPortsAreHeldUntilClosed(t *testing.T) {
	dir := t.TempDir()
	// A narrow range makes a second hand-out of a held port likely if the
	// locks did not work.
	a := &Ports{dir: dir, low: floor, high: floor + 40, held: map[int]*os.File{}}
	b := &Ports{dir: dir, low: floor, high: floor + 40, held: map[int]*os.File{}}
	seen := map[int]bool{}
	base, err := a.Run(4)
	if err != nil {
		t.Fatal(err)
	}
	for p := base; p < base+4; p++ {
		seen[p] = true
	}
	for range 10 {
		for _, ps := range []*Ports{a, b} {
			p, err := ps.Port()
			if err != nil {
				t.Fatal(err)
			}
			if seen[p] {
				t.Fatalf("port %d handed out twice while held", p)
			}
			if p < floor || p >= floor+40 {
				t.Fatalf("port %d outside [%d, %d)", p, floor, floor+40)
			}
			seen[p] = true
		}
	}
	a.Close()
	b.Close()
	c := &Ports{dir: dir, low: base, high: base + 4, held: map[int]*os.File{}}
	if got, err := c.Run(4); err != nil || got != base {
		t.Fatalf("after Close, Run(4) over the closed run = %d, %v; want %d", got, err, base)
	}
	c.Close()
}

// A port something listens on is not handed out.
func TestListeningPortIsSkipped(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	p := &Ports{dir: t.TempDir(), low: port, high: port + 1, held: map[int]*os.File{}}
	if got, err := p.Port(); err == nil {
		t.Fatalf("Port() = %d over a range whose only port %s is listened on", got, strconv.Itoa(port))
	}
}

func TestNewDrawsBelowTheEphemeralRange(t *testing.T) {
	p := New()
	defer p.Close()
	port, err := p.Port()
	if err != nil {
		t.Fatal(err)
	}
	if port < floor || port >= ephemeralLow() {
		t.Errorf("port %d outside [%d, %d)", port, floor, ephemeralLow())
	}
}

// Offset moves a fixed set of ports together into the range, and holds the
// moved ports as Run holds its run.
func TestOffsetMovesPortsTogetherAndHoldsThem(t *testing.T) {
	dir := t.TempDir()
	a := &Ports{dir: dir, low: floor, high: floor + 40, held: map[int]*os.File{}}
	defer a.Close()
	d, err := a.Offset(8081, 8091)
	if err != nil {
		t.Fatal(err)
	}
	for _, port := range []int{8081 + d, 8091 + d} {
		if port < floor || port >= floor+40 {
			t.Fatalf("moved port %d outside [%d, %d)", port, floor, floor+40)
		}
		b := &Ports{dir: dir, low: port, high: port + 1, held: map[int]*os.File{}}
		if got, err := b.Port(); err == nil {
			t.Fatalf("moved port %d handed out again while held (got %d)", port, got)
		}
	}
	if _, err := a.Offset(8081, 9091); err == nil {
		t.Fatal("Offset of ports 1,010 apart fit a range of 40")
	}
}
