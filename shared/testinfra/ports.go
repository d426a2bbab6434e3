package testinfra

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// portFloor is the lowest port FreePort hands out: above the well-known
// and the usual fixed service ports (MariaDB 3306, Kafka 9092, the
// project's 19092, 27017).
const portFloor = 28000

// FreePort returns a port on 127.0.0.1 that nothing listens on, drawn from
// below the kernel's ephemeral range. A port from the ephemeral range
// (what listening on :0 gives) can be taken, between being picked and
// being bound, or while the server that owns it is killed and restarted,
// by the local end of any outgoing connection on the machine; a port
// below it is never assigned implicitly, so only another test that picked
// the same port can collide.
func FreePort() (int, error) {
	low := ephemeralLow()
	if low-portFloor >= 1000 {
		for range 100 {
			port := portFloor + rand.IntN(low-portFloor)
			if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
				_ = l.Close()
				return port, nil
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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
	if err != nil {
		return 32768
	}
	return low
}
