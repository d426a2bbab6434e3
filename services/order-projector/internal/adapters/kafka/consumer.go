package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	"github.com/orderflow/orderflow/shared/outbox"
	"github.com/orderflow/orderflow/shared/projection"
)

// Projector applies a batch of events.
type Projector interface {
	Project(ctx context.Context, events []*eventsv1.OrderEvent) (projection.Result, error)
}

// HandlerConfig tunes batching and retries.
type HandlerConfig struct {
	// BatchSize is the most events applied at once.
	BatchSize int
	// Lanes is how many batches are applied at once. The partitions an
	// instance holds are dealt round the lanes, and each lane batches the
	// events of all its partitions together: per-partition batches would be
	// a few events each at peak (the topic has many partitions), and every
	// batch costs the same round trips to the shards, MongoDB and Kafka
	// whatever its size.
	Lanes int
	// Linger is how long a batch waits for more events after its first.
	Linger time.Duration
	// MaxAttempts failed applications send an event to the dead-letter topic.
	MaxAttempts int
	// RetryBase is the first wait between attempts; it doubles.
	RetryBase time.Duration
	// OutageWait is the wait while the read side's store is unreachable
	// (such waits spend no attempts: the events are not at fault).
	OutageWait time.Duration
}

// Handler is the sarama consumer-group handler of the projector. Offsets are
// marked only after a batch's documents are written (or its poison events
// dead-lettered), so a crash replays at most the batches in flight, which the
// version guards make harmless.
type Handler struct {
	projector Projector
	producer  *Producer
	outage    func(ctx context.Context) error
	cfg       HandlerConfig
	metrics   *Metrics
	logger    *slog.Logger
	now       func() time.Time

	// The session's lanes, set by Setup and drained by Cleanup (sarama
	// runs one session at a time per handler).
	lanes   map[topicPartition]chan claimed
	running sync.WaitGroup
}

// topicPartition names a partition across topics.
type topicPartition struct {
	topic     string
	partition int32
}

// claimed is a message with the claim it came from and its partition's lag
// gauge, which a lane sets once the message is applied.
type claimed struct {
	msg   *sarama.ConsumerMessage
	claim sarama.ConsumerGroupClaim
	lag   prometheus.Gauge
}

// NewHandler returns the handler. outage tells whether the store is
// unreachable as a whole (nil when it answers).
func NewHandler(p Projector, producer *Producer, outage func(ctx context.Context) error, cfg HandlerConfig, m *Metrics, logger *slog.Logger) *Handler {
	cfg.Lanes = max(cfg.Lanes, 1)
	return &Handler{projector: p, producer: producer, outage: outage, cfg: cfg, metrics: m, logger: logger, now: time.Now}
}

// Setup is called when partitions are assigned: it deals them round the
// lanes and starts them.
func (h *Handler) Setup(s sarama.ConsumerGroupSession) error {
	h.logger.Info("partitions assigned", slog.Any("claims", s.Claims()))
	var parts []topicPartition
	for topic, ps := range s.Claims() {
		for _, p := range ps {
			parts = append(parts, topicPartition{topic, p})
		}
	}
	slices.SortFunc(parts, func(a, b topicPartition) int {
		return cmp.Or(cmp.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
	})
	h.metrics.assigned.Set(float64(len(parts)))
	lanes := make([]chan claimed, min(h.cfg.Lanes, max(len(parts), 1)))
	for i := range lanes {
		lanes[i] = make(chan claimed, h.cfg.BatchSize)
		h.running.Go(func() { h.runLane(s, lanes[i]) })
	}
	h.lanes = make(map[topicPartition]chan claimed, len(parts))
	for i, p := range parts {
		h.lanes[p] = lanes[i%len(lanes)]
	}
	return nil
}

// Cleanup is called when partitions are revoked, after every ConsumeClaim
// returned and the session's context ended: it waits for the lanes to
// finish or abandon their batches, so that their marks precede the final
// offset commit.
func (h *Handler) Cleanup(sarama.ConsumerGroupSession) error {
	h.running.Wait()
	h.metrics.assigned.Set(0)
	return nil
}

// ConsumeClaim hands one partition's events to its lane until the claim ends.
func (h *Handler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	lane := h.lanes[topicPartition{claim.Topic(), claim.Partition()}]
	lag := h.metrics.lag.WithLabelValues(claim.Topic(), fmt.Sprint(claim.Partition()))
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			select {
			case lane <- claimed{msg: msg, claim: claim, lag: lag}:
			case <-s.Context().Done():
				return nil
			}
		case <-s.Context().Done():
			return nil
		}
	}
}

// runLane applies its partitions' events in batches until the session ends,
// marking each partition's last event of a batch once the batch is applied.
func (h *Handler) runLane(s sarama.ConsumerGroupSession, in <-chan claimed) {
	for {
		batch, open := h.collect(s.Context(), in)
		if len(batch) > 0 {
			msgs := make([]*sarama.ConsumerMessage, len(batch))
			for i, c := range batch {
				msgs[i] = c.msg
			}
			h.metrics.batchEvents.Observe(float64(len(batch)))
			if err := h.apply(s.Context(), msgs); err != nil {
				return // the session ends (rebalance or shutdown); the batch stays unmarked
			}
			last := map[topicPartition]claimed{}
			for _, c := range batch {
				last[topicPartition{c.msg.Topic, c.msg.Partition}] = c // a partition's events arrive in offset order
			}
			for _, c := range last {
				s.MarkMessage(c.msg, "")
				c.lag.Set(float64(c.claim.HighWaterMarkOffset() - c.msg.Offset - 1))
			}
		}
		if !open {
			return
		}
	}
}

// collect waits for a first message, then takes more until the batch is
// full or Linger passes. It reports false once the session has ended.
func (h *Handler) collect(ctx context.Context, in <-chan claimed) ([]claimed, bool) {
	var batch []claimed
	select {
	case c := <-in:
		batch = append(batch, c)
	case <-ctx.Done():
		return nil, false
	}
	timer := time.NewTimer(h.cfg.Linger)
	defer timer.Stop()
	for len(batch) < h.cfg.BatchSize {
		select {
		case c := <-in:
			batch = append(batch, c)
		case <-timer.C:
			return batch, true
		case <-ctx.Done():
			return batch, true
		}
	}
	return batch, true
}

type decoded struct {
	msg   *sarama.ConsumerMessage
	event *eventsv1.OrderEvent
}

// apply projects a batch; it returns an error only when ctx ended first.
func (h *Handler) apply(ctx context.Context, batch []*sarama.ConsumerMessage) error {
	var good []decoded
	for _, msg := range batch {
		ev := &eventsv1.OrderEvent{}
		err := proto.Unmarshal(msg.Value, ev)
		if err == nil && (ev.GetOrderNo() < 1 || !outbox.KnownEventType(ev.GetEventType())) {
			err = fmt.Errorf("not an order event: order %d, type %q", ev.GetOrderNo(), ev.GetEventType())
		}
		if err != nil {
			// Poison: no retry can make it an order event.
			if err := h.deadLetter(ctx, msg, fmt.Errorf("undecodable: %w", err), 1); err != nil {
				return err
			}
			continue
		}
		good = append(good, decoded{msg: msg, event: ev})
	}
	if len(good) == 0 {
		return nil
	}
	if err := h.projectWithRetries(ctx, good); err == nil || ctx.Err() != nil {
		return ctx.Err()
	}
	// The batch keeps failing: apply its events one by one, so that only the
	// ones at fault go to the dead-letter topic and the rest go on.
	for _, d := range good {
		if err := h.projectWithRetries(ctx, []decoded{d}); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err := h.deadLetter(ctx, d.msg, err, h.cfg.MaxAttempts); err != nil {
				return err
			}
		}
	}
	return nil
}

func (h *Handler) projectWithRetries(ctx context.Context, items []decoded) error {
	events := make([]*eventsv1.OrderEvent, len(items))
	for i, d := range items {
		events[i] = d.event
	}
	wait := h.cfg.RetryBase
	for attempt := 1; ; {
		start := h.now()
		res, err := h.projector.Project(ctx, events)
		if err == nil {
			h.record(events, res, h.now().Sub(start))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if outage := h.outage(ctx); outage != nil {
			h.logger.WarnContext(ctx, "read side store unreachable; waiting", slog.Any("error", outage))
			if !sleep(ctx, h.cfg.OutageWait) {
				return ctx.Err()
			}
			continue
		}
		h.metrics.failures.Inc()
		h.logger.WarnContext(ctx, "projecting failed", slog.Int("events", len(events)), slog.Int("attempt", attempt), slog.Any("error", err))
		if attempt >= h.cfg.MaxAttempts {
			return err
		}
		attempt++
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
		wait *= 2
	}
}

func (h *Handler) record(events []*eventsv1.OrderEvent, res projection.Result, took time.Duration) {
	now := h.now()
	for _, e := range events {
		h.metrics.lagSeconds.Observe(now.Sub(e.GetOccurredAt().AsTime()).Seconds())
	}
	h.metrics.events.WithLabelValues("applied").Add(float64(len(events)))
	h.metrics.documents.Add(float64(res.Projected))
	h.metrics.external.Add(float64(res.External))
	h.metrics.missing.Add(float64(len(res.Missing)))
	h.metrics.batchSeconds.Observe(took.Seconds())
	if len(res.Missing) > 0 {
		h.logger.Info("events of orders not on their shard skipped", slog.Any("orders", res.Missing))
	}
}

func (h *Handler) deadLetter(ctx context.Context, msg *sarama.ConsumerMessage, reason error, attempts int) error {
	for {
		err := h.producer.DeadLetter(msg, reason, attempts)
		if err == nil {
			h.metrics.events.WithLabelValues("dead_lettered").Inc()
			h.logger.ErrorContext(ctx, "event sent to the dead-letter topic", slog.String("source", fmt.Sprintf("%s/%d/%d", msg.Topic, msg.Partition, msg.Offset)),
				slog.Any("error", reason))
			return nil
		}
		h.logger.WarnContext(ctx, "dead-lettering failed; retrying", slog.Any("error", err))
		if !sleep(ctx, h.cfg.OutageWait) {
			return errors.Join(ctx.Err(), err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Metrics are the projector's Prometheus series.
type Metrics struct {
	events       *prometheus.CounterVec
	documents    prometheus.Counter
	external     prometheus.Counter
	missing      prometheus.Counter
	failures     prometheus.Counter
	lag          *prometheus.GaugeVec
	assigned     prometheus.Gauge
	lagSeconds   prometheus.Histogram
	batchSeconds prometheus.Histogram
	batchEvents  prometheus.Histogram
}

// NewMetrics registers the projector's series.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orderflow_projector_events_total",
			Help: "Internal events handled, by result (applied, dead_lettered)."}, []string{"result"}),
		documents: prometheus.NewCounter(prometheus.CounterOpts{Name: "orderflow_projector_documents_written_total",
			Help: "Order documents written (a newer version reached MongoDB)."}),
		external: prometheus.NewCounter(prometheus.CounterOpts{Name: "orderflow_projector_external_events_total",
			Help: "External events published."}),
		missing: prometheus.NewCounter(prometheus.CounterOpts{Name: "orderflow_projector_missing_orders_total",
			Help: "Events skipped because their order is not on its shard (purged)."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "orderflow_projector_failures_total",
			Help: "Failed attempts to apply a batch."}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "orderflow_projector_consumer_lag",
			Help: "Messages behind the partition's high-water mark."}, []string{"topic", "partition"}),
		assigned: prometheus.NewGauge(prometheus.GaugeOpts{Name: "orderflow_projector_assigned_partitions",
			Help: "Partitions this instance consumes now."}),
		lagSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "orderflow_projector_lag_seconds",
			Help:    "From the event's occurred_at to its document being written.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "orderflow_projector_batch_seconds",
			Help:    "Time to apply one batch (shard reads, MongoDB writes, external events).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}),
		batchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "orderflow_projector_batch_events",
			Help:    "Events in one batch (all partitions of a lane).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11)}),
	}
	reg.MustRegister(m.events, m.documents, m.external, m.missing, m.failures, m.lag, m.assigned, m.lagSeconds, m.batchSeconds, m.batchEvents)
	return m
}
