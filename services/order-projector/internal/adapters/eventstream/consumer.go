package eventstream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/orderflow/orderflow/services/order-projector/internal/failure"
	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/observability"
	"github.com/orderflow/orderflow/shared/orderenum"
	"github.com/orderflow/orderflow/shared/projection"
	"github.com/orderflow/orderflow/shared/wait"
)

// Projector applies a batch of events.
type Projector interface {
	Project(ctx context.Context, events []*eventsv1.OrderEvent) (projection.Result, error)
}

// DeadLetters receives the events set aside.
type DeadLetters interface {
	DeadLetter(msg *sarama.ConsumerMessage, dl DeadLetter) error
}

// HandlerConfig tunes batching, retries and outage waits.
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
	// MaxAttempts failed applications (for reasons that are neither an
	// outage nor poison) send an event to the dead-letter topic.
	MaxAttempts int
	// RetryBase is the first wait between attempts; it doubles. It is
	// also the wait before a batch that met a conflict is applied again.
	RetryBase time.Duration
	// OutageWaitMin and OutageWaitMax bound the waits while a dependency
	// is unreachable: the first wait is OutageWaitMin ±20 %, each next
	// step doubles, and every wait is cut at OutageWaitMax (backoff/v5's
	// randomization alone would let it reach 1.2 × OutageWaitMax). Such
	// waits spend no attempts: the events are not at fault.
	OutageWaitMin, OutageWaitMax time.Duration
}

// setDefaults fills what may be left out: one lane.
func (c *HandlerConfig) setDefaults() {
	if c.Lanes == 0 {
		c.Lanes = 1
	}
}

// Validate checks the settings (after defaults).
func (c HandlerConfig) Validate() error {
	var errs []error
	if c.BatchSize < 1 || c.MaxAttempts < 1 || c.Lanes < 1 {
		errs = append(errs, errors.New("batch size, max attempts and lanes must be at least 1"))
	}
	if c.Linger <= 0 || c.RetryBase <= 0 {
		errs = append(errs, errors.New("batch linger and retry base must be positive"))
	}
	if c.OutageWaitMin <= 0 || c.OutageWaitMax < c.OutageWaitMin {
		errs = append(errs, errors.New("the outage wait minimum must be positive and the maximum not below it"))
	}
	return errors.Join(errs...)
}

// Handler is the sarama consumer-group handler of the projector. Offsets are
// marked only after a batch's documents are written (or its poison events
// dead-lettered), so a crash replays at most the batches in flight, which the
// version guards make harmless. What a failure calls for is decided by
// failure.Classify alone.
type Handler struct {
	projector Projector
	dlq       DeadLetters
	cfg       HandlerConfig
	metrics   *Metrics
	logger    *slog.Logger
	now       func() time.Time
	// tracer and propagator make each event's span, continuing the trace
	// its message carries (the relay's span).
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator

	// The session's lanes, set by Setup and drained by Cleanup (sarama
	// runs one session at a time per handler).
	lanes   map[topicPartition]chan claimed
	running sync.WaitGroup

	// waiting counts, per dependency, the lanes that wait for it now. The
	// up gauge is 1 only while no lane waits; a lane that ends (rebalance,
	// shutdown) stops counting, so a session that ended during an outage
	// cannot leave the gauge at 0 after the dependency answers again.
	waitingMu sync.Mutex
	waiting   map[failure.Dependency]int
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

// tracerScope names the handler's spans.
const tracerScope = "github.com/orderflow/orderflow/services/order-projector/internal/adapters/eventstream"

// NewHandler returns the handler, or an error when cfg is not valid. Every
// event is a consumer span of tracing whose parent is the trace context in
// the message's headers.
func NewHandler(p Projector, dlq DeadLetters, cfg HandlerConfig, m *Metrics, logger *slog.Logger, tracing *observability.Tracing) (*Handler, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("projector handler config: %w", err)
	}
	return &Handler{projector: p, dlq: dlq, cfg: cfg, metrics: m, logger: logger, now: time.Now,
		tracer: tracing.Tracer(tracerScope), propagator: tracing.Propagator, waiting: map[failure.Dependency]int{}}, nil
}

// laneWaits counts one more (delta 1) or one fewer (-1) lane waiting for
// dep and sets its up gauge.
func (h *Handler) laneWaits(dep failure.Dependency, delta int) {
	h.waitingMu.Lock()
	defer h.waitingMu.Unlock()
	h.waiting[dep] += delta
	up := 0.0
	if h.waiting[dep] <= 0 {
		delete(h.waiting, dep)
		up = 1
	}
	h.metrics.up.WithLabelValues(string(dep)).Set(up)
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
		l := h.newLane()
		h.running.Go(func() { l.run(s, lanes[i]) })
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

// lane applies the batches of some partitions, one at a time. Its outage
// back-off lives across batches: a dependency that stays down keeps the
// waits long, one that answers again resets them.
type lane struct {
	h      *Handler
	outage *backoff.ExponentialBackOff
	// down are the dependencies this lane waited for since its last
	// success; the lane stops counting as waiting for them when a batch
	// succeeds or the lane ends.
	down map[failure.Dependency]bool
}

func (h *Handler) newLane() *lane {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = h.cfg.OutageWaitMin
	b.MaxInterval = h.cfg.OutageWaitMax
	b.Multiplier = 2
	b.RandomizationFactor = 0.2 // lanes and instances do not retry in step
	return &lane{h: h, outage: b, down: map[failure.Dependency]bool{}}
}

// run applies its partitions' events in batches until the session ends,
// marking each partition's last event of a batch once the batch is applied.
func (l *lane) run(s sarama.ConsumerGroupSession, in <-chan claimed) {
	h := l.h
	defer l.stopWaiting()
	for {
		batch, open := h.collect(s.Context(), in)
		if len(batch) > 0 {
			msgs := make([]*sarama.ConsumerMessage, len(batch))
			for i, c := range batch {
				msgs[i] = c.msg
			}
			h.metrics.batchEvents.Observe(float64(len(batch)))
			if err := l.apply(s.Context(), msgs); err != nil {
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
	// ctx is the batch's context with the event's span.
	ctx  context.Context
	span trace.Span
}

// startSpan starts the span of one consumed event, a child of the trace
// context its headers carry (the relay's publish span).
func (h *Handler) startSpan(ctx context.Context, msg *sarama.ConsumerMessage) (context.Context, trace.Span) {
	return h.tracer.Start(kafkax.ExtractTrace(ctx, h.propagator, msg), "process "+msg.Topic,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "kafka"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", msg.Topic),
			attribute.Int("messaging.destination.partition.id", int(msg.Partition)),
			attribute.Int64("messaging.kafka.offset", msg.Offset),
			attribute.String("messaging.kafka.message.key", string(msg.Key)),
		))
}

// withSpans returns ctx carrying the event spans of items, for the
// projection's step spans.
func withSpans(ctx context.Context, items []decoded) context.Context {
	spans := make(map[int64][]trace.Span, len(items))
	for _, d := range items {
		no := d.event.GetOrderNo()
		spans[no] = append(spans[no], d.span)
	}
	return projection.WithEventSpans(ctx, spans)
}

// decode reads an internal event; its errors are poison (failure.Classify).
// The event is returned when it parsed, for the dead letter's headers.
func decode(value []byte) (*eventsv1.OrderEvent, error) {
	ev := &eventsv1.OrderEvent{}
	if err := proto.Unmarshal(value, ev); err != nil {
		return nil, fmt.Errorf("%w: %w", failure.ErrUndecodable, err)
	}
	switch {
	case ev.GetOrderNo() == 0 && ev.GetEventType() == "" && ev.GetEventId() == "":
		return nil, fmt.Errorf("%w: an empty message", failure.ErrUndecodable)
	case ev.GetOrderNo() < 1:
		return ev, fmt.Errorf("%w: order %d", failure.ErrInvalidOrderNo, ev.GetOrderNo())
	case !orderenum.KnownEventType(ev.GetEventType()):
		return ev, fmt.Errorf("%w %q", failure.ErrUnknownEventType, ev.GetEventType())
	}
	return ev, nil
}

// apply projects a batch; it returns an error only when ctx ended first.
// Each event is a span from here until the batch is done with it (applied,
// dead-lettered or abandoned with the session); the lines logged about one
// event carry its trace.
func (l *lane) apply(ctx context.Context, batch []*sarama.ConsumerMessage) error {
	var good []decoded
	spans := make([]trace.Span, 0, len(batch))
	defer func() {
		for _, span := range spans {
			span.End()
		}
	}()
	for _, msg := range batch {
		eventCtx, span := l.h.startSpan(ctx, msg)
		spans = append(spans, span)
		ev, err := decode(msg.Value)
		if ev != nil {
			span.SetAttributes(attribute.Int64("orderflow.order_no", ev.GetOrderNo()),
				attribute.Int("orderflow.order_version", int(ev.GetOrderVersion())),
				attribute.String("orderflow.event_id", ev.GetEventId()), attribute.String("orderflow.event_type", ev.GetEventType()))
		}
		if err != nil {
			// Poison: no retry can make it an order event.
			if err := l.deadLetter(eventCtx, msg, ev, failure.Classify(err).Reason, err, 1); err != nil {
				return err
			}
			continue
		}
		good = append(good, decoded{msg: msg, event: ev, ctx: eventCtx, span: span})
	}
	rest, err := l.project(withSpans(ctx, good), good)
	if err == nil || ctx.Err() != nil {
		return ctx.Err()
	}
	// The batch keeps failing, and not for an outage (project waits those
	// out): apply its events one by one, so that only the ones at fault go
	// to the dead-letter topic and the rest go on.
	for _, d := range rest {
		if left, err := l.project(withSpans(d.ctx, []decoded{d}), []decoded{d}); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			for _, d := range left {
				if err := l.deadLetter(d.ctx, d.msg, d.event, failure.RetriesExhausted, err, l.h.cfg.MaxAttempts); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// project applies items until they are applied, ctx ends, or they spent
// MaxAttempts; it returns the items not applied (those of invalid orders are
// dead-lettered on the way). Outages are waited out without spending
// attempts, conflicts retried soon without spending them (up to MaxAttempts
// in a row, so that a conflict that never clears cannot loop forever).
func (l *lane) project(ctx context.Context, items []decoded) ([]decoded, error) {
	h := l.h
	// Each failed attempt waits twice as long as the one before, starting at
	// RetryBase, without jitter; MaxAttempts, not a cap, bounds the waits.
	delays := &backoff.ExponentialBackOff{InitialInterval: h.cfg.RetryBase, Multiplier: 2, MaxInterval: time.Duration(math.MaxInt64)}
	attempt, conflicts := 1, 0
	for len(items) > 0 {
		events := make([]*eventsv1.OrderEvent, len(items))
		for i, d := range items {
			events[i] = d.event
		}
		start := h.now()
		res, err := h.projector.Project(ctx, events)
		if err == nil {
			h.record(events, res, h.now().Sub(start))
			l.recovered()
			return nil, nil
		}
		if ctx.Err() != nil {
			return items, ctx.Err()
		}
		switch v := failure.Classify(err); v.Kind {
		case failure.Outage:
			if !l.waitOutage(ctx, v.Dependency, err) {
				return items, ctx.Err()
			}
			continue
		case failure.Poison:
			if kept, ok, err := l.setAsideInvalid(ctx, items, err, attempt); ok {
				if err != nil {
					return kept, err
				}
				items = kept
				continue
			}
		case failure.Transient:
			if conflicts < h.cfg.MaxAttempts {
				conflicts++
				h.metrics.conflicts.Inc()
				h.logger.InfoContext(ctx, "documents changed meanwhile; applying again", slog.Int("events", len(events)), slog.Any("error", err))
				if !wait.Sleep(ctx, h.cfg.RetryBase) {
					return items, ctx.Err()
				}
				continue
			}
		}
		h.metrics.failures.Inc()
		h.logger.WarnContext(ctx, "projecting failed", slog.Int("events", len(events)), slog.Int("attempt", attempt), slog.Any("error", err))
		if attempt >= h.cfg.MaxAttempts {
			return items, err
		}
		attempt++
		if !wait.Sleep(ctx, delays.NextBackOff()) {
			return items, ctx.Err()
		}
	}
	return nil, nil
}

// setAsideInvalid dead-letters the events of the orders err names as
// invalid and returns the other items; ok is false when err names none.
func (l *lane) setAsideInvalid(ctx context.Context, items []decoded, err error, attempts int) (kept []decoded, ok bool, _ error) {
	bad := map[int64]*projection.InvalidOrderError{}
	for _, ie := range projection.InvalidOrders(err) {
		bad[ie.OrderNo] = ie
	}
	if len(bad) == 0 {
		return items, false, nil
	}
	for i, d := range items {
		ie := bad[d.event.GetOrderNo()]
		if ie == nil {
			kept = append(kept, d)
			continue
		}
		if err := l.deadLetter(d.ctx, d.msg, d.event, failure.InvalidOrder, ie, attempts); err != nil {
			return append(kept, items[i:]...), true, err
		}
	}
	return kept, true, nil
}

// waitOutage counts and logs an outage of dep and waits the next back-off
// interval (never more than OutageWaitMax); false when ctx ended first.
func (l *lane) waitOutage(ctx context.Context, dep failure.Dependency, err error) bool {
	d := min(l.outage.NextBackOff(), l.h.cfg.OutageWaitMax)
	if !l.down[dep] {
		l.down[dep] = true
		l.h.laneWaits(dep, 1)
	}
	l.h.metrics.outageWaits.WithLabelValues(string(dep)).Inc()
	l.h.logger.WarnContext(ctx, "dependency unreachable; waiting before applying the batch again",
		slog.String("dependency", string(dep)), slog.Duration("wait", d), slog.Any("error", err))
	return wait.Sleep(ctx, d)
}

// recovered resets the outage back-off after a success.
func (l *lane) recovered() {
	l.outage.Reset()
	for dep := range l.down {
		l.h.logger.Info("dependency answers again", slog.String("dependency", string(dep)))
	}
	l.stopWaiting()
}

// stopWaiting stops counting the lane as waiting for any dependency.
func (l *lane) stopWaiting() {
	for dep := range l.down {
		l.h.laneWaits(dep, -1)
		delete(l.down, dep)
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

// deadLetter sends msg to the dead-letter topic, waiting out a Kafka that
// does not take it (the event must not be lost); it returns an error only
// when ctx ended first.
func (l *lane) deadLetter(ctx context.Context, msg *sarama.ConsumerMessage, ev *eventsv1.OrderEvent, reason failure.Reason, cause error, attempts int) error {
	h := l.h
	dl := DeadLetter{Reason: reason, Err: cause, Attempts: attempts, EventType: ev.GetEventType(), OrderNo: ev.GetOrderNo()}
	span := trace.SpanFromContext(ctx)
	span.RecordError(cause)
	span.SetStatus(codes.Error, "dead-lettered: "+string(reason))
	for {
		err := h.dlq.DeadLetter(msg, dl)
		if err == nil {
			l.recovered()
			h.metrics.events.WithLabelValues("dead_lettered").Inc()
			h.metrics.deadLetters.WithLabelValues(string(reason)).Inc()
			h.logger.ErrorContext(ctx, "event sent to the dead-letter topic", slog.String("source", fmt.Sprintf("%s/%d/%d", msg.Topic, msg.Partition, msg.Offset)),
				slog.String("reason", string(reason)), slog.Any("error", cause))
			return nil
		}
		if !l.waitOutage(ctx, failure.Kafka, err) {
			return errors.Join(ctx.Err(), err)
		}
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
	conflicts    prometheus.Counter
	outageWaits  *prometheus.CounterVec
	up           *prometheus.GaugeVec
	deadLetters  *prometheus.CounterVec
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
			Help: "Failed attempts to apply a batch that spent one of its attempts (neither an outage nor poison)."}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Name: "orderflow_projector_conflict_retries_total",
			Help: "Batches applied again because documents changed meanwhile (no attempt spent)."}),
		outageWaits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orderflow_projector_outage_waits_total",
			Help: "Waits for an unreachable or hung dependency before applying a batch again (no attempt spent), by dependency."},
			[]string{"dependency"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "orderflow_projector_dependency_up",
			Help: "0 while some lane waits for the dependency to answer again; 1 once every such lane applied a batch after it or ended."},
			[]string{"dependency"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orderflow_projector_dead_letters_total",
			Help: "Events sent to the dead-letter topic, by reason (the dlq-reason header)."}, []string{"reason"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "orderflow_projector_consumer_lag",
			Help: "Messages behind the partition's high-water mark."}, []string{"topic", "partition"}),
		assigned: prometheus.NewGauge(prometheus.GaugeOpts{Name: "orderflow_projector_assigned_partitions",
			Help: "Partitions this instance consumes now."}),
		lagSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "orderflow_projector_lag_seconds",
			Help:    "From the event's occurred_at to its document being written.",
			Buckets: observability.PipelineBuckets()}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "orderflow_projector_batch_seconds",
			Help:    "Time to apply one batch (shard reads, MongoDB writes, external events).",
			Buckets: observability.BatchBuckets()}),
		batchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "orderflow_projector_batch_events",
			Help:    "Events in one batch (all partitions of a lane).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11)}),
	}
	for _, d := range []failure.Dependency{failure.Shard, failure.MongoDB, failure.Kafka} {
		m.outageWaits.WithLabelValues(string(d))
		m.up.WithLabelValues(string(d)).Set(1)
	}
	for _, r := range []failure.Reason{failure.Undecodable, failure.UnknownEventType, failure.InvalidOrderNo, failure.InvalidOrder, failure.RetriesExhausted} {
		m.deadLetters.WithLabelValues(string(r))
	}
	for _, r := range []string{"applied", "dead_lettered"} {
		m.events.WithLabelValues(r)
	}
	reg.MustRegister(m.events, m.documents, m.external, m.missing, m.failures, m.lag, m.assigned, m.lagSeconds, m.batchSeconds,
		m.batchEvents, m.conflicts, m.outageWaits, m.up, m.deadLetters)
	return m
}
