package relay

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/shared/observability"
	"github.com/orderflow/orderflow/shared/outbox"
	"github.com/orderflow/orderflow/shared/wait"
)

// Metrics are the relay's Prometheus series, per shard.
type Metrics struct {
	owned       *prometheus.GaugeVec
	published   *prometheus.CounterVec
	failures    *prometheus.CounterVec
	cleaned     *prometheus.CounterVec
	cleanupErrs *prometheus.CounterVec
	commitToAck *prometheus.HistogramVec
	pending     *prometheus.GaugeVec
	failed      *prometheus.GaugeVec
	oldestAge   *prometheus.GaugeVec
	replayed    *prometheus.CounterVec
	kafkaWait   *prometheus.GaugeVec
}

// NewMetrics registers the relay's series.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		owned: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "orderflow_outbox_shard_owned",
			Help: "1 while this relay instance owns the shard's outbox."}, []string{"shard"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orderflow_outbox_published_total",
			Help: "Outbox rows Kafka acknowledged."}, []string{"shard"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orderflow_outbox_publish_failures_total",
			Help: "Rows whose publish failed; kind=row spends an attempt, kind=transient (Kafka down, topic or leader unavailable) does not."}, []string{"shard", "kind"}),
		cleaned: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orderflow_outbox_cleaned_total",
			Help: "PUBLISHED rows deleted after the retention."}, []string{"shard"}),
		cleanupErrs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orderflow_outbox_cleanup_failures_total",
			Help: "Cleanups of PUBLISHED rows that failed; the relay goes on publishing and tries again after the cleanup interval."}, []string{"shard"}),
		commitToAck: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "orderflow_outbox_commit_to_ack_seconds",
			Help:    "From the event's occurred_at (its transaction) to Kafka's acknowledgement.",
			Buckets: observability.PipelineBuckets()}, []string{"shard"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "orderflow_outbox_pending",
			Help: "PENDING rows (waiting to be published)."}, []string{"shard"}),
		failed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "orderflow_outbox_failed",
			Help: "FAILED rows (attempts used up; replay them with orderctl)."}, []string{"shard"}),
		oldestAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "orderflow_outbox_oldest_pending_age_seconds",
			Help: "Age of the oldest PENDING row."}, []string{"shard"}),
		replayed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orderflow_outbox_replayed_rows_total",
			Help: "Rows the admin API's replay put back to PENDING (dry runs excluded), counted as each chunk commits."}, []string{"shard"}),
		kafkaWait: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "orderflow_outbox_kafka_waiting",
			Help: "1 while this instance owns the shard and waits for Kafka to take its rows (a transient failure and no success since), else 0."}, []string{"shard"}),
	}
	reg.MustRegister(m.owned, m.published, m.failures, m.cleaned, m.cleanupErrs, m.commitToAck, m.pending, m.failed, m.oldestAge, m.replayed, m.kafkaWait)
	return m
}

// initShard creates the shard's series that only events would create
// otherwise (ownership at 0, counters and the histogram empty), so that
// every shard is on /metrics from the start and rate() over a counter of
// a quiet shard is 0, not empty. Children that exist are left as they are.
func (m *Metrics) initShard(shard string) {
	m.owned.WithLabelValues(shard)
	m.published.WithLabelValues(shard)
	m.failures.WithLabelValues(shard, "row")
	m.failures.WithLabelValues(shard, "transient")
	m.cleaned.WithLabelValues(shard)
	m.cleanupErrs.WithLabelValues(shard)
	m.commitToAck.WithLabelValues(shard)
	m.replayed.WithLabelValues(shard)
	m.kafkaWait.WithLabelValues(shard).Set(0)
}

// Replayed counts n rows of shard that a replay put back to PENDING.
func (m *Metrics) Replayed(shard string, n int64) {
	if n > 0 {
		m.replayed.WithLabelValues(shard).Add(float64(n))
	}
}

// WatchBacklog refreshes the per-shard backlog gauges from the outbox
// tables every interval until ctx ends. Every relay instance reports every
// shard, so the numbers survive a fail-over; a shard added to the topology
// gets its series at the next refresh.
func (m *Metrics) WatchBacklog(ctx context.Context, store *outbox.Store, interval time.Duration) {
	for {
		for _, s := range store.Backlog(ctx) {
			m.initShard(s.Shard)
			if s.Err != nil {
				continue
			}
			m.pending.WithLabelValues(s.Shard).Set(float64(s.Pending))
			m.failed.WithLabelValues(s.Shard).Set(float64(s.Failed))
			m.oldestAge.WithLabelValues(s.Shard).Set(s.OldestPendingAge.Seconds())
		}
		wait.Sleep(ctx, interval)
		if ctx.Err() != nil {
			return
		}
	}
}
