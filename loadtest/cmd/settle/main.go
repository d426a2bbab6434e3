// Command settle waits until the running relay and projector have nothing
// left to do: no outbox row waiting on any shard and no event left in the
// projector's partitions. The benchmarks run it first, so that one
// benchmark's backlog (orders written while the downstream services were
// stopped, or an overload phase) is not worked off on the cores the next one
// measures.
//
//	go run ./loadtest/cmd/settle
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/orderflow/orderflow/loadtest/internal/bench"
)

func main() {
	var p bench.Pipeline
	flag.StringVar(&p.RelayMetrics, "relay-metrics", "127.0.0.1:8082", "outbox-relay HTTP address (/metrics)")
	flag.StringVar(&p.ProjectorMetrics, "projector-metrics", "127.0.0.1:8083", "order-projector HTTP address (/metrics)")
	timeout := flag.Duration("timeout", 15*time.Minute, "give up after this long")
	flag.Parse()
	took, ok := p.WaitDrained(context.Background(), *timeout)
	if !ok {
		pending, lag, err := p.Backlog()
		fmt.Fprintf(os.Stderr, "settle: still %.0f outbox rows and %.0f events behind after %s (%v)\n", pending, lag, took.Round(time.Second), err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "settle: the relay and the projector are idle (waited %s)\n", took.Round(100*time.Millisecond))
}
