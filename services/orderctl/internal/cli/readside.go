package cli

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orderflow/orderflow/services/orderctl/internal/readmodel"
	"github.com/orderflow/orderflow/shared/mongox"
	"github.com/orderflow/orderflow/shared/projection"
	"github.com/orderflow/orderflow/shared/projection/docstore"
	"github.com/orderflow/orderflow/shared/projection/external"
	"github.com/orderflow/orderflow/shared/projection/source"
	"github.com/orderflow/orderflow/shared/shard"
)

// readSideFlags are the flags of the commands that work on the read side:
// where the shards, MongoDB and Kafka are, defaulting to the settings.
type readSideFlags struct {
	topology, mongoURI, database string
	brokers, dlqTopic, external  string
	maxWait                      time.Duration
}

func (f *readSideFlags) bind(cmd *cobra.Command, s Settings, kafka bool) {
	fl := cmd.Flags()
	bindTopology(fl, &f.topology, s)
	bindMongo(fl, &f.mongoURI, &f.database, s)
	if kafka {
		fl.StringVar(&f.brokers, "brokers", s.KafkaBrokers, "Kafka bootstrap servers, comma-separated ($ORDERFLOW_KAFKA_BROKERS)")
		fl.StringVar(&f.dlqTopic, "dlq-topic", s.DLQTopic, "dead-letter topic ($ORDERFLOW_DLQ_TOPIC)")
		fl.StringVar(&f.external, "external-topic", s.ExternalTopic, "topic of the external events ($ORDERFLOW_EXTERNAL_TOPIC)")
		fl.DurationVar(&f.maxWait, "max-wait", 2*time.Minute, "how long one batch waits out an outage of the shards, MongoDB or Kafka (with back-off) before the command gives up")
	}
}

func (f *readSideFlags) brokerList() []string { return strings.Split(f.brokers, ",") }

// readSide is what a re-projecting command works with.
type readSide struct {
	pools   *shard.Pools
	db      *mongo.Database
	applier *readmodel.Applier
	close   func()
}

// open connects the shards, MongoDB and a producer of external events, and
// builds the projector's own code path over them.
func (f *readSideFlags) open(ctx context.Context, logger *slog.Logger) (*readSide, error) {
	pools, db, closeAll, err := openWithReadSide(ctx, f.topology, f.mongoURI, f.database)
	if err != nil {
		return nil, err
	}
	producer, err := external.NewProducer(external.ProducerConfig{Brokers: f.brokerList(), ClientID: "orderctl"})
	if err != nil {
		closeAll()
		return nil, err
	}
	p := projection.New(source.NewReader(pools), docstore.NewStore(db), external.NewPublisher(producer, f.external), time.Now, nil)
	applier, err := readmodel.NewApplier(p, readmodel.ApplyConfig{MaxWait: f.maxWait, Logger: logger})
	if err != nil {
		closeAll()
		return nil, errors.Join(err, closeProducer(producer))
	}
	return &readSide{pools: pools, db: db, applier: applier, close: func() {
		_ = closeProducer(producer)
		closeAll()
	}}, nil
}

func closeProducer(p sarama.SyncProducer) error { return p.Close() }

// cmdLogger writes warnings (retries through outages) to the command's
// stderr.
func cmdLogger(cmd *cobra.Command) *slog.Logger {
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func connectMongo(cmd *cobra.Command, f *readSideFlags) (*mongo.Client, error) {
	return mongox.Connect(cmd.Context(), f.mongoURI)
}
