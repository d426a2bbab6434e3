package service_test

import (
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/orderflow/orderflow/shared/testinfra"
)

// A shard that is down (killed) or hung (stopped: it accepts connections
// and answers nothing) while its orders' events arrive is an outage: the
// projector waits with growing waits, spends no attempts, dead-letters
// nothing, and projects the events once the shard answers again.
func TestAShardOutageIsWaitedOutNotDeadLettered(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		down, up func(*testinfra.MariaDB)
	}{
		{name: "killed", down: (*testinfra.MariaDB).Kill, up: (*testinfra.MariaDB).Start},
		{name: "hung", down: (*testinfra.MariaDB).Stop, up: (*testinfra.MariaDB).Continue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			topo, private := testinfra.ShardsWithPrivate(t)
			e := newEnv(t, topo)
			for no := int64(1); no <= 8; no++ {
				e.writeOrder(order{no: no, version: 1})
			}
			dlq := e.collect(e.dlq)
			cfg := e.config()
			cfg.Shard = testinfra.WithHungShardDeadlines(cfg.Shard)
			svc, _ := e.start(cfg)
			metric := func(name string) float64 { return testinfra.MetricSum(t, svc.HTTPAddr(), name) }
			const waits = `orderflow_projector_outage_waits_total{dependency="shard"}`

			// Orders of both shards go through first, so the projector holds
			// connections to the shard when it goes down.
			e.produce(internalEvent(order{no: 1, version: 1}, 1), internalEvent(order{no: 2, version: 1}, 1))
			for _, no := range []int64{1, 2} {
				testinfra.Eventually(t, 30*time.Second, func() bool { _, ok := e.doc(no); return ok }, "order %d not projected", no)
			}
			before := metric(waits)
			downAt := time.Now()
			tt.down(private)
			var msgs []*sarama.ProducerMessage
			for no := int64(3); no <= 8; no++ {
				msgs = append(msgs, internalEvent(order{no: no, version: 1}, 1))
			}
			e.produce(msgs...)

			// Well past the attempts (3 in this configuration), and the waits
			// grow: ten of them, dealt over two lanes, take at least
			// 2 × (0.04 + 0.08 + 0.16 + 0.32 + 0.32) s with the 50 ms first
			// wait (less 20 % jitter) doubling to the 400 ms cap.
			const outageWaits = 10
			testinfra.Eventually(t, 60*time.Second, func() bool { return metric(waits)-before >= outageWaits },
				"the projector did not wait for the shard (%v waits)", metric(waits)-before)
			if took := time.Since(downAt); took < 900*time.Millisecond {
				t.Errorf("%d outage waits in %v: the waits do not grow", outageWaits, took)
			}
			if up := metric(`orderflow_projector_dependency_up{dependency="shard"}`); up != 0 {
				t.Errorf("shard dependency up = %v during the outage, want 0", up)
			}
			for _, no := range []int64{3, 5, 7} {
				if _, ok := e.doc(no); ok {
					t.Fatalf("order %d of the shard that is down was projected", no)
				}
			}

			tt.up(private)
			for no := int64(3); no <= 8; no++ {
				testinfra.Eventually(t, 60*time.Second, func() bool { _, ok := e.doc(no); return ok },
					"order %d not projected after the shard came back", no)
			}
			testinfra.Eventually(t, 10*time.Second, func() bool {
				return metric(`orderflow_projector_dependency_up{dependency="shard"}`) == 1
			}, "the shard is not reported up again")
			if n := len(dlq.all()); n != 0 {
				t.Errorf("%d events dead-lettered for an outage", n)
			}
			if n := metric("orderflow_projector_dead_letters_total"); n != 0 {
				t.Errorf("%v dead letters counted for an outage", n)
			}
			if n := metric("orderflow_projector_failures_total"); n != 0 {
				t.Errorf("%v attempts spent on an outage", n)
			}
		})
	}
}
