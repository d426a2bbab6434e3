// Command peerrelay moves an outbox backlog from MariaDB shards to Kafka with
// Watermill's forwarder: a watermill-sql subscriber reads each shard's
// forwarder table and a watermill-kafka publisher sends every message to the
// topic named in its envelope. relaybench runs it next to our outbox-relay to
// compare the two on the same machine and the same backlog.
//
//	peerrelay -dsn 'root@tcp(127.0.0.1:3307)/db0' -dsn 'root@tcp(127.0.0.1:3308)/db1' \
//	    -topic relaybench-peer -sql-topic relaybench_forwarder
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	_ "github.com/go-sql-driver/mysql"

	"github.com/orderflow/orderflow/shared/kafkax"
)

// dsnList collects -dsn given several times or comma-separated.
type dsnList []string

func (d *dsnList) String() string { return strings.Join(*d, ",") }

func (d *dsnList) Set(v string) error {
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*d = append(*d, s)
		}
	}
	return nil
}

type options struct {
	dsns          dsnList
	brokers       string
	topic         string
	sqlTopic      string
	consumerGroup string
	batch         int
	poll          time.Duration
	keyMetadata   string
	httpAddr      string
	logLevel      string
}

func main() {
	var o options
	flag.Var(&o.dsns, "dsn", "MariaDB DSN of a shard; repeat it or separate with commas (one forwarder per shard)")
	flag.StringVar(&o.brokers, "brokers", "127.0.0.1:19092", "Kafka bootstrap servers, comma-separated")
	flag.StringVar(&o.topic, "topic", "", "Kafka topic the messages go to; it must exist")
	flag.StringVar(&o.sqlTopic, "sql-topic", "forwarder_topic", "the forwarder's SQL topic (table watermill_<sql-topic> on every shard)")
	flag.StringVar(&o.consumerGroup, "consumer-group", "peerrelay", "consumer group whose offset each shard keeps")
	// The library's default is 100. The whole batch is read, handed out and
	// acknowledged in one SERIALIZABLE transaction, so a larger batch means
	// fewer SELECT/offset round trips per message and more messages sent
	// again after a crash. 1000 is what our relay claims per shard at once.
	flag.IntVar(&o.batch, "batch", 1000, "messages read per query (DefaultMySQLSchema.SubscribeBatchSize)")
	// The library's default is 1 s. It is only waited after a query found
	// nothing; 20 ms is our relay's idle wait, so both notice new rows
	// equally soon.
	flag.DurationVar(&o.poll, "poll", 20*time.Millisecond, "pause after a query that found nothing (SubscriberConfig.PollInterval)")
	flag.StringVar(&o.keyMetadata, "key-metadata", "order-no", "message metadata whose value is the Kafka key")
	flag.StringVar(&o.httpAddr, "http", "", "serve /readyz here (200 once every forwarder runs); empty: no HTTP")
	flag.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintln(os.Stderr, "peerrelay: -log-level:", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, o, logger); err != nil {
		logger.Error("peerrelay failed", slog.Any("error", err))
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, logger *slog.Logger) error {
	if len(o.dsns) == 0 || o.topic == "" || o.brokers == "" {
		return errors.New("-dsn, -topic and -brokers are required")
	}
	brokers := strings.Split(o.brokers, ",")
	if err := topicExists(brokers, o.topic); err != nil {
		return err
	}
	wlog := watermill.NewSlogLogger(logger)

	// One producer for all shards, as our relay has: concurrent sends from
	// the shards' forwarders can share a produce request.
	publisher, err := kafka.NewPublisher(kafka.PublisherConfig{
		Brokers:               brokers,
		Marshaler:             kafka.NewWithPartitioningMarshaler(keyFrom(o.keyMetadata)),
		OverwriteSaramaConfig: producerConfig(),
	}, wlog)
	if err != nil {
		return fmt.Errorf("kafka publisher: %w", err)
	}
	defer func() { _ = publisher.Close() }()

	var forwarders []*forwarder.Forwarder
	for i, dsn := range o.dsns {
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			return fmt.Errorf("shard %d: %w", i, err)
		}
		defer func() { _ = db.Close() }()
		if err := db.PingContext(ctx); err != nil {
			return fmt.Errorf("shard %d: %w", i, err)
		}
		shardLog := wlog.With(watermill.LogFields{"shard": i})
		subscriber, err := wsql.NewSubscriber(wsql.BeginnerFromStdSQL(db), wsql.SubscriberConfig{
			ConsumerGroup:  o.consumerGroup,
			PollInterval:   o.poll,
			SchemaAdapter:  wsql.DefaultMySQLSchema{SubscribeBatchSize: o.batch},
			OffsetsAdapter: wsql.DefaultMySQLOffsetsAdapter{},
			// Creates the message and offset tables when missing, so a
			// shard that never had a message still starts.
			InitializeSchema: true,
		}, shardLog)
		if err != nil {
			return fmt.Errorf("shard %d: sql subscriber: %w", i, err)
		}
		fwd, err := forwarder.NewForwarder(subscriber, publisher, shardLog, forwarder.Config{
			ForwarderTopic: o.sqlTopic,
			// The wait for a message being sent when we stop; our relay's
			// shutdown timeout.
			CloseTimeout: 20 * time.Second,
		})
		if err != nil {
			return fmt.Errorf("shard %d: forwarder: %w", i, err)
		}
		forwarders = append(forwarders, fwd)
	}

	// The routers are stopped with Close, which waits for the message being
	// sent. It still ends the subscription's transaction, so the offset of a
	// batch cut short is not stored and the messages of it that Kafka already
	// has are sent again by the next run (at-least-once; up to -batch per
	// shard). The library logs that rollback as an error when we stop.
	ready := func() bool {
		return !slices.ContainsFunc(forwarders, func(f *forwarder.Forwarder) bool {
			select {
			case <-f.Running():
				return false
			default:
				return true
			}
		})
	}
	srv, err := serveReadiness(o.httpAddr, ready, logger)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	ended := make(chan error, len(forwarders))
	for _, fwd := range forwarders {
		wg.Go(func() { ended <- fwd.Run(context.WithoutCancel(ctx)) })
	}
	logger.Info("forwarding", slog.Int("shards", len(forwarders)), slog.String("sql_topic", o.sqlTopic),
		slog.String("topic", o.topic), slog.Int("batch", o.batch), slog.Duration("poll", o.poll))

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("stopping")
	case err := <-ended:
		// A router returns on its own only when its subscription ended.
		runErr = errors.Join(errors.New("a forwarder stopped"), err)
	}
	var closeErrs []error
	for _, fwd := range forwarders {
		closeErrs = append(closeErrs, fwd.Close())
	}
	wg.Wait()
	if srv != nil {
		closeErrs = append(closeErrs, srv.Close())
	}
	return errors.Join(append(closeErrs, runErr)...)
}

// producerConfig is our relay's producer, as far as it applies: the same
// protocol version and delivery guarantees (idempotent, acks from all
// in-sync replicas, one request in flight, the same retries and timeout).
// Our relay also sets a 2 ms linger and LZ4; they are left out here because
// the Watermill publisher sends one message and waits for its ack before the
// next, so there is no batch to linger for or to compress, and the linger
// would only add 2 ms to every message.
func producerConfig() *sarama.Config {
	cfg := kafkax.NewConfig("orderflow-peerrelay")
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Retry.Max = 3
	cfg.Producer.Retry.Backoff = 100 * time.Millisecond
	cfg.Producer.Timeout = 10 * time.Second
	return cfg
}

// keyFrom keys each Kafka message by one of its metadata entries (the order
// number), so that one order's events share a partition, as with our relay.
func keyFrom(name string) kafka.GeneratePartitionKey {
	return func(_ string, msg *message.Message) (string, error) {
		return msg.Metadata.Get(name), nil
	}
}

// topicExists fails fast on a topic the broker does not have: the broker
// would otherwise create it on first use with its default partition count.
func topicExists(brokers []string, topic string) error {
	client, err := sarama.NewClient(brokers, kafkax.NewConfig("orderflow-peerrelay-check"))
	if err != nil {
		return fmt.Errorf("connecting to kafka: %w", err)
	}
	defer client.Close()
	topics, err := client.Topics()
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	if !slices.Contains(topics, topic) {
		return fmt.Errorf("kafka has no topic %q", topic)
	}
	return nil
}

func serveReadiness(addr string, ready func() bool, logger *slog.Logger) (*http.Server, error) {
	if addr == "" {
		return nil, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready() {
			http.Error(w, "forwarders starting", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("readiness server", slog.Any("error", err))
		}
	}()
	return srv, nil
}
