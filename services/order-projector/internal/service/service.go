// Package service wires the order projector: shards, MongoDB, the Kafka
// consumer group and producer, and the operations HTTP port.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orderflow/orderflow/services/order-projector/internal/adapters/eventstream"
	"github.com/orderflow/orderflow/shared/deadletter"
	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/lifecycle"
	"github.com/orderflow/orderflow/shared/lifecycle/retention"
	"github.com/orderflow/orderflow/shared/mongox"
	"github.com/orderflow/orderflow/shared/observability"
	"github.com/orderflow/orderflow/shared/orderdoc"
	"github.com/orderflow/orderflow/shared/projection"
	"github.com/orderflow/orderflow/shared/projection/docstore"
	"github.com/orderflow/orderflow/shared/projection/external"
	"github.com/orderflow/orderflow/shared/projection/source"
	"github.com/orderflow/orderflow/shared/server"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/wait"
)

// Config is the projector's configuration, read from ORDERFLOW_* variables.
type Config struct {
	// HTTPAddr serves /metrics, /healthz and /readyz.
	HTTPAddr string `env:"HTTP_ADDR" envDefault:"127.0.0.1:8083"`
	// TopologyFile is the JSON list of shards and shard epochs.
	TopologyFile string `env:"TOPOLOGY_FILE" envDefault:".state/topology.json"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`
	// Shard sizes each shard's connection pool (ORDERFLOW_SHARD_*).
	Shard shard.PoolConfig `envPrefix:"SHARD_"`
	// KafkaBrokers are the bootstrap servers, comma-separated.
	KafkaBrokers string `env:"KAFKA_BROKERS" envDefault:"127.0.0.1:19092"`
	// Group is the consumer group; projector instances share its partitions.
	Group string `env:"PROJECTOR_GROUP" envDefault:"order-projector"`
	// Topic carries the internal events.
	Topic string `env:"PROJECTOR_TOPIC" envDefault:"orders.internal.v1"`
	// ExternalTopic receives the external events.
	ExternalTopic string `env:"EXTERNAL_TOPIC" envDefault:"orders.external.v1"`
	// DLQTopic receives events that keep failing.
	DLQTopic string `env:"DLQ_TOPIC" envDefault:"orders.internal.dlq.v1"`
	// MongoURI and MongoDatabase locate the read side.
	MongoURI      string `env:"MONGO_URI" envDefault:"mongodb://127.0.0.1:27017"`
	MongoDatabase string `env:"MONGO_DATABASE" envDefault:"orderflow"`
	// BatchSize and BatchLinger shape the batches. Every batch pays a
	// read per shard, two MongoDB round trips and a produce request,
	// whatever its size, so a batch waits 50ms for more events: the relay
	// publishes a shard's rows in bursts (RELAY_LINGER) and a short linger
	// split each burst into several batches (docs/performance.md).
	BatchSize   int           `env:"PROJECTOR_BATCH_SIZE" envDefault:"500"`
	BatchLinger time.Duration `env:"PROJECTOR_BATCH_LINGER" envDefault:"50ms"`
	// Lanes is how many batches are applied at once; the instance's
	// partitions are dealt round them.
	Lanes int `env:"PROJECTOR_LANES" envDefault:"2"`
	// MaxAttempts failed applications send an event to the dead-letter
	// topic, for failures that are neither an outage (waited out, no
	// attempt spent) nor poison (dead-lettered at once).
	MaxAttempts int `env:"PROJECTOR_MAX_ATTEMPTS" envDefault:"5"`
	// RetryBase is the first wait between attempts (it doubles per
	// attempt) and the wait before applying a batch again after a conflict.
	RetryBase time.Duration `env:"PROJECTOR_RETRY_BASE" envDefault:"200ms"`
	// OutageWaitMin and OutageWaitMax bound the waits while a shard,
	// MongoDB or Kafka is unreachable or hung: doubling from the first,
	// each drawn within ±20 % and cut at the second, and the batch is
	// applied again after each (eventstream.HandlerConfig).
	OutageWaitMin time.Duration `env:"PROJECTOR_OUTAGE_WAIT_MIN" envDefault:"200ms"`
	OutageWaitMax time.Duration `env:"PROJECTOR_OUTAGE_WAIT_MAX" envDefault:"5s"`
	// MongoTimeout bounds each MongoDB operation of a batch.
	MongoTimeout time.Duration `env:"PROJECTOR_MONGO_TIMEOUT" envDefault:"2s"`
	// KafkaTimeout bounds each producer request (dial, read, write, the
	// broker's wait for replicas); a publish gives up within about three.
	KafkaTimeout time.Duration `env:"PROJECTOR_KAFKA_TIMEOUT" envDefault:"2s"`
	// ShutdownTimeout bounds the drain on SIGTERM.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"20s"`
	// Profiling serves /debug/pprof/ on the HTTP port.
	Profiling bool `env:"PPROF" envDefault:"false"`
	// PurgeInterval runs the 30-day purge of the shards this often (0: never;
	// orderctl orders purge runs it by hand). Instances may overlap: the
	// deletes are idempotent.
	PurgeInterval time.Duration `env:"PURGE_INTERVAL" envDefault:"0s"`
	// OrderRetention is how long orders stay on the shards before the purge
	// removes them: at least retention.Min, the longest order-command lets
	// an order be changed.
	OrderRetention time.Duration `env:"ORDER_RETENTION" envDefault:"720h"`
	// TopologyReload is how often the topology file is checked for a new
	// shard; 0 turns reloading off.
	TopologyReload time.Duration `env:"TOPOLOGY_RELOAD" envDefault:"1s"`
	// HTTP bounds the operations port's connections
	// (ORDERFLOW_HTTP_READ_TIMEOUT, _READ_HEADER_TIMEOUT, _WRITE_TIMEOUT,
	// _IDLE_TIMEOUT, _MAX_HEADER_BYTES).
	HTTP server.HTTPConfig `envPrefix:"HTTP_"`
}

// Validate checks what parsing does not and no constructor New calls
// checks itself: the HTTP settings are checked by server.Listen, the shard
// pools by shard.Open, batching,
// retries and outage waits by eventstream.NewHandler, once each.
func (c *Config) Validate() error {
	var errs []error
	if c.MongoTimeout <= 0 || c.KafkaTimeout <= 0 {
		errs = append(errs, errors.New("ORDERFLOW_PROJECTOR_MONGO_TIMEOUT and _KAFKA_TIMEOUT must be positive"))
	}
	if c.Group == "" || c.Topic == "" || c.ExternalTopic == "" || c.DLQTopic == "" || c.MongoDatabase == "" {
		errs = append(errs, errors.New("the group, topics and Mongo database must not be empty"))
	}
	if c.PurgeInterval < 0 {
		errs = append(errs, errors.New("ORDERFLOW_PURGE_INTERVAL must not be negative"))
	}
	if err := retention.ValidateRetention(c.OrderRetention); err != nil {
		errs = append(errs, fmt.Errorf("ORDERFLOW_ORDER_RETENTION: %w", err))
	}
	return errors.Join(errs...)
}

// LogLevelName is the configured log level.
func (c *Config) LogLevelName() string { return c.LogLevel }

// TopologyPath is the configured topology file.
func (c *Config) TopologyPath() string { return c.TopologyFile }

// Service is a running projector.
type Service struct {
	cfg      Config
	logger   *slog.Logger
	pools    *shard.Pools
	mongo    *mongo.Client
	producer *eventstream.Producer
	group    sarama.ConsumerGroup
	// dlqClient reads the dead-letter topic's offsets for its gauge.
	dlqClient sarama.Client
	handler   *eventstream.Handler
	server    *server.Server
	tracing   *observability.Tracing
	purger    *lifecycle.Purger
}

// New connects everything and binds the HTTP port; Run consumes.
func New(ctx context.Context, cfg Config, topo shard.Topology, logger *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	s := &Service{cfg: cfg, logger: logger}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	var err error
	if s.tracing, err = observability.NewTracing(ctx, "order-projector"); err != nil {
		return nil, err
	}
	// The re-read's statements get spans under the event's span.
	if s.pools, err = shard.Open(topo, cfg.Shard, shard.WithTracerProvider(s.tracing.ExportingProvider())); err != nil {
		return nil, err
	}
	if s.mongo, err = mongox.Connect(ctx, cfg.MongoURI); err != nil {
		return nil, err
	}
	store := docstore.NewStore(s.mongo.Database(cfg.MongoDatabase))
	s.purger = lifecycle.NewPurger(s.pools, s.mongo.Database(cfg.MongoDatabase))
	if err := orderdoc.EnsureIndexes(ctx, store.Collection()); err != nil {
		return nil, err
	}
	brokers := strings.Split(cfg.KafkaBrokers, ",")
	if s.producer, err = eventstream.NewProducer(eventstream.ProducerConfig{
		ProducerConfig: external.ProducerConfig{Brokers: brokers, ClientID: "orderflow-projector", Timeout: cfg.KafkaTimeout, Retries: 2},
		ExternalTopic:  cfg.ExternalTopic, DLQTopic: cfg.DLQTopic}); err != nil {
		return nil, err
	}
	gcfg := kafkax.NewConfig("orderflow-projector")
	gcfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	gcfg.Consumer.Offsets.AutoCommit.Interval = 200 * time.Millisecond
	gcfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRoundRobin()}
	if s.group, err = sarama.NewConsumerGroup(brokers, cfg.Group, gcfg); err != nil {
		return nil, fmt.Errorf("joining consumer group %s: %w", cfg.Group, err)
	}

	registry := observability.NewRegistry()
	registry.MustRegister(s.pools.Collector())
	// The projector owns the DLQ, so it exports its size, counted as
	// orderctl counts it (shared/deadletter).
	dcfg := kafkax.NewConfig("orderflow-projector-dlq")
	dcfg.Net.DialTimeout, dcfg.Net.ReadTimeout, dcfg.Net.WriteTimeout = cfg.KafkaTimeout, cfg.KafkaTimeout, cfg.KafkaTimeout
	if s.dlqClient, err = sarama.NewClient(brokers, dcfg); err != nil {
		return nil, fmt.Errorf("connecting to kafka for the dead-letter topic: %w", err)
	}
	dlqCollector, err := deadletter.NewCollector(s.dlqClient, s.mongo.Database(cfg.MongoDatabase).Collection(deadletter.ResolvedCollection),
		deadletter.CollectorConfig{Topic: cfg.DLQTopic}, logger)
	if err != nil {
		return nil, err
	}
	registry.MustRegister(dlqCollector)
	var refresh func() bool
	if cfg.TopologyReload > 0 && cfg.TopologyFile != "" {
		refresh = func() bool {
			changed, _ := shard.ReloadTopology(context.Background(), cfg.TopologyFile, s.pools, logger)
			return changed
		}
	}
	projector := projection.New(shardSource{reader: source.NewReader(s.pools)},
		mongoStore{store: store, timeout: cfg.MongoTimeout}, s.producer, time.Now, refresh)
	if s.handler, err = eventstream.NewHandler(projector, s.producer, eventstream.HandlerConfig{
		BatchSize: cfg.BatchSize, Lanes: cfg.Lanes, Linger: cfg.BatchLinger, MaxAttempts: cfg.MaxAttempts, RetryBase: cfg.RetryBase,
		OutageWaitMin: cfg.OutageWaitMin, OutageWaitMax: cfg.OutageWaitMax,
	}, eventstream.NewMetrics(registry), logger, s.tracing); err != nil {
		return nil, fmt.Errorf("ORDERFLOW_PROJECTOR_*: %w", err)
	}

	ready := func(ctx context.Context) map[string]error {
		checks := s.pools.Ping(ctx)
		checks["kafka"] = kafkax.Ping(ctx, brokers)
		checks["mongodb"] = mongox.Ping(ctx, s.mongo)
		return checks
	}
	handler := server.NewHTTPHandler(server.HTTPOptions{API: http404(), Ready: ready, ReadyTimeout: 3 * time.Second,
		Logger: logger, Registry: registry, Profiling: cfg.Profiling})
	if s.server, err = server.Listen(logger, server.Addrs{HTTP: cfg.HTTPAddr}, nil, handler, cfg.HTTP, cfg.ShutdownTimeout); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// HTTPAddr is the bound operations address.
func (s *Service) HTTPAddr() string { return s.server.HTTPAddr() }

// Run consumes until ctx ends; the batch in flight is finished or left
// unmarked, never half-marked.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	var consumeErr, serveErr error
	wg.Go(func() {
		for ctx.Err() == nil {
			if err := s.group.Consume(ctx, []string{s.cfg.Topic}, s.handler); err != nil && ctx.Err() == nil {
				s.logger.WarnContext(ctx, "consumer group session ended", slog.Any("error", err))
				wait.Sleep(ctx, time.Second)
			}
		}
	})
	wg.Go(func() { serveErr = s.server.Run(ctx) })
	if s.cfg.PurgeInterval > 0 {
		wg.Go(func() { s.purgeEvery(ctx) })
	}
	if s.cfg.TopologyReload > 0 && s.cfg.TopologyFile != "" {
		wg.Go(func() { shard.WatchTopology(ctx, s.cfg.TopologyFile, s.pools, s.cfg.TopologyReload, s.logger) })
	}
	wg.Wait()
	return errors.Join(consumeErr, serveErr, s.close())
}

// purgeEvery removes orders past the retention on every tick.
func (s *Service) purgeEvery(ctx context.Context) {
	t := time.NewTicker(s.cfg.PurgeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		results, err := s.purger.Purge(ctx, lifecycle.PurgeConfig{Retention: s.cfg.OrderRetention, Now: time.Now(), Batch: 500}, nil)
		for _, r := range results {
			if r.Purged > 0 || r.Held > 0 {
				s.logger.InfoContext(ctx, "purged old orders", slog.String("shard", r.Shard), slog.Int("purged", r.Purged), slog.Int("held", r.Held))
			}
		}
		if err != nil && ctx.Err() == nil {
			s.logger.WarnContext(ctx, "purge failed", slog.Any("error", err))
		}
	}
}

func (s *Service) close() error {
	var errs []error
	if s.group != nil {
		errs = append(errs, s.group.Close())
	}
	if s.producer != nil {
		errs = append(errs, s.producer.Close())
	}
	if s.dlqClient != nil {
		errs = append(errs, s.dlqClient.Close())
	}
	if s.mongo != nil {
		errs = append(errs, s.mongo.Disconnect(context.Background()))
	}
	if s.tracing != nil {
		errs = append(errs, s.tracing.Shutdown(context.Background()))
	}
	if s.pools != nil {
		errs = append(errs, s.pools.Close())
	}
	return errors.Join(errs...)
}
