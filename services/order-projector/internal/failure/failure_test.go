package failure_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/go-sql-driver/mysql"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
	"google.golang.org/protobuf/proto"

	"github.com/orderflow/orderflow/services/order-projector/internal/failure"
	eventsv1 "github.com/orderflow/orderflow/shared/gen/orderflow/events/v1"
	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/projection"
	"github.com/orderflow/orderflow/shared/shard"
)

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// The errors the drivers return when nothing listens: dialling, selecting
// a MongoDB server and connecting a Kafka producer.
func unreachable(t *testing.T) (dial, mongoSelection, kafkaConnect error) {
	t.Helper()
	addr := closedAddr(t)
	_, dial = net.DialTimeout("tcp", addr, time.Second)
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + addr).SetServerSelectionTimeout(100 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	mongoSelection = client.Ping(context.Background(), readpref.Primary())
	_ = client.Disconnect(context.Background())
	cfg := kafkax.NewConfig("failure-test")
	cfg.Metadata.Retry.Max = 0
	cfg.Producer.Return.Successes = true
	_, kafkaConnect = sarama.NewSyncProducer([]string{addr}, cfg)
	if dial == nil || mongoSelection == nil || kafkaConnect == nil {
		t.Fatalf("something answered on %s: %v, %v, %v", addr, dial, mongoSelection, kafkaConnect)
	}
	return dial, mongoSelection, kafkaConnect
}

func TestClassify(t *testing.T) {
	t.Parallel()
	dial, mongoSelection, kafkaConnect := unreachable(t)
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	deadline := expired.Err()
	badProto := proto.Unmarshal([]byte("not a protobuf \xff\xfe"), &eventsv1.OrderEvent{})
	if badProto == nil {
		t.Fatal("the garbage decodes")
	}
	invalid := fmt.Errorf("validating orders: %w", errors.Join(&projection.InvalidOrderError{OrderNo: 7, Reason: "no items"}))

	outage := func(d failure.Dependency) failure.Verdict {
		return failure.Verdict{Kind: failure.Outage, Dependency: d}
	}
	poison := func(r failure.Reason) failure.Verdict { return failure.Verdict{Kind: failure.Poison, Reason: r} }
	transient := failure.Verdict{Kind: failure.Transient}
	other := failure.Verdict{Kind: failure.Other}
	tests := []struct {
		name string
		err  error
		want failure.Verdict
	}{
		// Shards.
		{"shard unavailable", fmt.Errorf("reading orders: %w", shard.Classify("shard-1", dial)), outage(failure.Shard)},
		{"shard unavailable error value", &shard.UnavailableError{Shard: "shard-0", Err: io.EOF}, outage(failure.Shard)},
		{"mysql invalid connection", fmt.Errorf("reading orders: %w", mysql.ErrInvalidConn), outage(failure.Shard)},
		{"mysql server shutdown", &mysql.MySQLError{Number: 1053, Message: "Server shutdown in progress"}, outage(failure.Shard)},
		{"mariadb statement timeout", &mysql.MySQLError{Number: 1969, Message: "Query execution was interrupted (max_statement_time exceeded)"}, outage(failure.Shard)},
		{"mysql too many connections", &mysql.MySQLError{Number: 1040, Message: "Too many connections"}, outage(failure.Shard)},
		{"shard statement deadline", failure.In(failure.Shard, fmt.Errorf("reading orders: %w", deadline)), outage(failure.Shard)},
		{"mysql deadlock", &mysql.MySQLError{Number: 1213, Message: "Deadlock found"}, transient},
		{"mysql missing table", &mysql.MySQLError{Number: 1146, Message: "Table 'orderflow.orders' doesn't exist"}, other},
		// MongoDB.
		{"mongodb server selection", fmt.Errorf("reading documents: %w", mongoSelection), outage(failure.MongoDB)},
		{"mongodb server selection value", topology.ServerSelectionError{Wrapped: deadline}, outage(failure.MongoDB)},
		{"mongodb network error", mongo.CommandError{Labels: []string{"NetworkError"}, Wrapped: io.EOF}, outage(failure.MongoDB)},
		{"mongodb shutting down", mongo.CommandError{Code: 91, Name: "ShutdownInProgress"}, outage(failure.MongoDB)},
		{"mongodb timeout", failure.In(failure.MongoDB, fmt.Errorf("finding documents: %w", deadline)), outage(failure.MongoDB)},
		{"mongodb bad value", mongo.CommandError{Code: 2, Name: "BadValue"}, other},
		// Kafka.
		{"kafka out of brokers", fmt.Errorf("publishing external events: %w", sarama.ErrOutOfBrokers), outage(failure.Kafka)},
		{"kafka producer cannot connect", kafkaConnect, outage(failure.Kafka)},
		{"kafka per-message errors", sarama.ProducerErrors{{Msg: &sarama.ProducerMessage{}, Err: sarama.ErrNotEnoughReplicas}}, outage(failure.Kafka)},
		{"kafka request timed out", sarama.ErrRequestTimedOut, outage(failure.Kafka)},
		{"kafka dial error", failure.In(failure.Kafka, dial), outage(failure.Kafka)},
		{"kafka message too large", sarama.ProducerErrors{{Msg: &sarama.ProducerMessage{}, Err: sarama.ErrMessageSizeTooLarge}}, other},
		// Errors that do not say where they came from.
		{"bare deadline", deadline, outage(failure.Unknown)},
		{"bare dial error", dial, outage(failure.Unknown)},
		// Poison.
		{"undecodable", badProto, poison(failure.Undecodable)},
		{"undecodable sentinel", fmt.Errorf("%w: empty", failure.ErrUndecodable), poison(failure.Undecodable)},
		{"unknown event type", fmt.Errorf("%w %q", failure.ErrUnknownEventType, "OrderEaten"), poison(failure.UnknownEventType)},
		{"order number below 1", fmt.Errorf("%w: 0", failure.ErrInvalidOrderNo), poison(failure.InvalidOrderNo)},
		{"invalid order re-read", invalid, poison(failure.InvalidOrder)},
		// An outage wins, so that it never sends an event away.
		{"invalid order and a shard down", errors.Join(invalid, shard.Classify("shard-1", dial)), outage(failure.Shard)},
		// Transient and the rest.
		{"document conflict", fmt.Errorf("%w: 2 documents", projection.ErrConflict), transient},
		{"cancelled", context.Canceled, other},
		{"anything else", errors.New("boom"), other},
		{"nil", nil, other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := failure.Classify(tt.err); got != tt.want {
				t.Errorf("Classify(%v) = %+v, want %+v", tt.err, got, tt.want)
			}
		})
	}
}
