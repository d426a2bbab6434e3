package bench

import (
	"context"
	"time"

	"github.com/orderflow/orderflow/shared/testinfra"
)

// Pipeline is where the running relay and projector serve /metrics.
type Pipeline struct {
	RelayMetrics, ProjectorMetrics string
}

// Backlog reads the outbox rows waiting on every shard and the events the
// projector has yet to consume.
func (p Pipeline) Backlog() (pending, lag float64, err error) {
	if pending, err = testinfra.SumMetrics(p.RelayMetrics, "orderflow_outbox_pending{"); err != nil {
		return 0, 0, err
	}
	lag, err = testinfra.SumMetrics(p.ProjectorMetrics, "orderflow_projector_consumer_lag{")
	return pending, lag, err
}

// WaitDrained polls until nothing waits in the outbox or the topic, or
// timeout passes, and reports how long that took and whether it drained.
// A phase that overloaded the system thus does not spill into the next.
func (p Pipeline) WaitDrained(ctx context.Context, timeout time.Duration) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < timeout && ctx.Err() == nil {
		if pending, lag, err := p.Backlog(); err == nil && pending == 0 && lag == 0 {
			return time.Since(start), true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return time.Since(start), false
}
