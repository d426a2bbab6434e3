package deadletter

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// CollectorConfig configures a Collector.
type CollectorConfig struct {
	// Topic is the dead-letter topic counted.
	Topic string
	// Timeout is how long a scrape waits for a count (default 1s): a
	// broker or read store that does not answer costs a scrape this long
	// at most, well within Prometheus' scrape timeout (a scrape that timed
	// out would take the projector's other metrics and its `up` with it),
	// and the scrape then carries no DLQ sample rather than a wrong one.
	// The count goes on in the background and serves the next scrape.
	Timeout time.Duration
	// MaxAge is how long a count is served again before the next scrape
	// counts anew (default 5s, the local scrape interval), so several
	// Prometheus servers scraping cost one count per interval.
	MaxAge time.Duration
}

func (c CollectorConfig) withDefaults() (CollectorConfig, error) {
	if c.Topic == "" {
		return c, errors.New("deadletter: the dead-letter topic is required")
	}
	if c.Timeout < 0 || c.MaxAge < 0 {
		return c, errors.New("deadletter: the timeout and max age must not be negative")
	}
	if c.Timeout == 0 {
		c.Timeout = time.Second
	}
	if c.MaxAge == 0 {
		c.MaxAge = 5 * time.Second
	}
	return c, nil
}

// Collector exports the dead-letter topic's Counts on every scrape:
// orderflow_dlq_unresolved_messages (what the DeadLettersWaiting alert
// watches) and orderflow_dlq_messages, both labelled with the topic.
type Collector struct {
	client   sarama.Client
	resolved *mongo.Collection
	cfg      CollectorConfig
	logger   *slog.Logger
	now      func() time.Time

	unresolved, retained *prometheus.Desc

	mu     sync.Mutex
	last   Counts
	lastAt time.Time
	// running is closed when the count in flight ends; nil when none is.
	running chan struct{}
}

// NewCollector returns a collector counting cfg.Topic with client and the
// marks in resolved; logger hears about counts that failed.
func NewCollector(client sarama.Client, resolved *mongo.Collection, cfg CollectorConfig, logger *slog.Logger) (*Collector, error) {
	if client == nil || resolved == nil || logger == nil {
		return nil, errors.New("deadletter: the Kafka client, the resolved collection and the logger are required")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	labels := prometheus.Labels{"topic": cfg.Topic}
	return &Collector{
		client: client, resolved: resolved, cfg: cfg, logger: logger, now: time.Now,
		unresolved: prometheus.NewDesc("orderflow_dlq_unresolved_messages",
			"Dead letters retained in the dead-letter topic and not worked off (orderctl dlq count's unresolved).", nil, labels),
		retained: prometheus.NewDesc("orderflow_dlq_messages",
			"Messages retained in the dead-letter topic, worked off or not.", nil, labels),
	}, nil
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.unresolved
	ch <- c.retained
}

// Collect implements prometheus.Collector: it serves the last count while
// it is younger than MaxAge, else counts anew (one count in flight at
// most) and waits for it up to Timeout.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	counts, ok := c.counts()
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.unresolved, prometheus.GaugeValue, float64(counts.Unresolved))
	ch <- prometheus.MustNewConstMetric(c.retained, prometheus.GaugeValue, float64(counts.Retained))
}

func (c *Collector) counts() (Counts, bool) {
	c.mu.Lock()
	if !c.lastAt.IsZero() && c.now().Sub(c.lastAt) < c.cfg.MaxAge {
		defer c.mu.Unlock()
		return c.last, true
	}
	if c.running == nil {
		c.running = make(chan struct{})
		go c.refresh(c.running)
	}
	running := c.running
	c.mu.Unlock()

	select {
	case <-running:
	case <-time.After(c.cfg.Timeout):
		return Counts{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last, !c.lastAt.IsZero()
}

// refresh counts and keeps the result (a failed count forgets the last
// one, so no scrape serves a count older than MaxAge).
func (c *Collector) refresh(done chan struct{}) {
	// The Kafka client's own timeouts bound its offset requests; this
	// bounds the read store's count.
	ctx, cancel := context.WithTimeout(context.Background(), 10*c.cfg.Timeout)
	counts, err := Count(ctx, c.client, c.resolved, c.cfg.Topic)
	cancel()
	c.mu.Lock()
	if err != nil {
		c.logger.Warn("counting dead letters failed", slog.String("topic", c.cfg.Topic), slog.Any("error", err))
		c.last, c.lastAt = Counts{}, time.Time{}
	} else {
		c.last, c.lastAt = counts, c.now()
	}
	c.running = nil
	c.mu.Unlock()
	close(done)
}
