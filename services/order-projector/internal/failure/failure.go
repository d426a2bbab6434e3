// Package failure decides, in one place and without side effects, what the
// projector does about an error: wait for a dependency that is down (an
// outage spends no dead-letter attempts, however long it lasts), retry at
// once (a transient conflict), set the event aside on the dead-letter topic
// (poison: no retry can help), or retry a bounded number of times (anything
// else).
package failure

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/IBM/sarama"
	"github.com/go-sql-driver/mysql"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
	"google.golang.org/protobuf/proto"

	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/projection"
	"github.com/orderflow/orderflow/shared/shard"
)

// Kind is what to do about an error.
type Kind int

const (
	// Other errors are retried a bounded number of times, then the events
	// are applied one by one and those still failing are dead-lettered.
	Other Kind = iota
	// Transient errors are retried soon without spending attempts: a retry
	// re-reads and converges (a document changed by another writer).
	Transient
	// Outage means a dependency is unreachable or hung: the batch waits
	// and is retried, and no attempt is spent.
	Outage
	// Poison means no retry can apply the event: it is dead-lettered at once.
	Poison
)

func (k Kind) String() string {
	switch k {
	case Transient:
		return "transient"
	case Outage:
		return "outage"
	case Poison:
		return "poison"
	default:
		return "other"
	}
}

// Dependency names what an outage is of; the values are metric labels.
type Dependency string

// The projector's dependencies.
const (
	Shard   Dependency = "shard"
	MongoDB Dependency = "mongodb"
	Kafka   Dependency = "kafka"
	// Unknown is an outage (a timeout, a refused connection) whose error
	// does not say which dependency it came from.
	Unknown Dependency = "unknown"
)

// Reason is why an event was dead-lettered; the values are the dlq-reason
// header and a metric label.
type Reason string

// The dead-letter reasons.
const (
	// Undecodable: the message is not an OrderEvent protobuf.
	Undecodable Reason = kafkax.DLQReasonUndecodable
	// UnknownEventType: an OrderEvent of a type the projector does not know.
	UnknownEventType Reason = kafkax.DLQReasonUnknownEventType
	// InvalidOrderNo: an OrderEvent with an order number below 1.
	InvalidOrderNo Reason = kafkax.DLQReasonInvalidOrderNo
	// InvalidOrder: the order re-read from its shard fails validation.
	InvalidOrder Reason = kafkax.DLQReasonInvalidOrder
	// RetriesExhausted: an event that kept failing for another reason.
	RetriesExhausted Reason = kafkax.DLQReasonRetriesExhausted
)

// The decoding errors of a message; each is poison.
var (
	ErrUndecodable      = errors.New("not an order event")
	ErrUnknownEventType = errors.New("unknown event type")
	ErrInvalidOrderNo   = errors.New("order number below 1")
)

// Verdict is the decision about one error.
type Verdict struct {
	Kind Kind
	// Dependency is set for an outage.
	Dependency Dependency
	// Reason is set for poison.
	Reason Reason
}

// DependencyError marks an error with the dependency whose call returned
// it, so that a generic timeout or connection error is attributed to it.
type DependencyError struct {
	Dependency Dependency
	Err        error
}

func (e *DependencyError) Error() string { return fmt.Sprintf("%s: %v", e.Dependency, e.Err) }

// Unwrap exposes the cause.
func (e *DependencyError) Unwrap() error { return e.Err }

// In marks err (nil stays nil) as returned by a call to d.
func In(d Dependency, err error) error {
	if err == nil {
		return nil
	}
	return &DependencyError{Dependency: d, Err: err}
}

// Classify decides what err calls for. An outage anywhere in err's tree
// wins over everything else, so that an unreachable dependency never costs
// an event its place. A nil error is Other.
func Classify(err error) Verdict {
	if err == nil {
		return Verdict{Kind: Other}
	}
	if dep, ok := outage(err); ok {
		var tagged *DependencyError
		if errors.As(err, &tagged) {
			dep = tagged.Dependency
		}
		return Verdict{Kind: Outage, Dependency: dep}
	}
	switch {
	case len(projection.InvalidOrders(err)) > 0:
		return Verdict{Kind: Poison, Reason: InvalidOrder}
	case errors.Is(err, ErrUnknownEventType):
		return Verdict{Kind: Poison, Reason: UnknownEventType}
	case errors.Is(err, ErrInvalidOrderNo):
		return Verdict{Kind: Poison, Reason: InvalidOrderNo}
	case errors.Is(err, ErrUndecodable), errors.Is(err, proto.Error):
		return Verdict{Kind: Poison, Reason: Undecodable}
	case transient(err):
		return Verdict{Kind: Transient}
	}
	return Verdict{Kind: Other}
}

// mysqlOutageCodes are server errors that mean the shard is going away,
// refusing connections or past a statement deadline, not that the
// statement was wrong.
var mysqlOutageCodes = map[uint16]bool{
	1040: true, // ER_CON_COUNT_ERROR: too many connections
	1053: true, // ER_SERVER_SHUTDOWN
	1927: true, // ER_CONNECTION_KILLED (MariaDB)
	1969: true, // ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
	3024: true, // ER_QUERY_TIMEOUT (MySQL max_execution_time)
	4031: true, // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8)
}

// mysqlTransientCodes are lock conflicts that a retry resolves.
var mysqlTransientCodes = map[uint16]bool{
	1205: true, // ER_LOCK_WAIT_TIMEOUT
	1213: true, // ER_LOCK_DEADLOCK
}

// mongoOutageCodes are server errors of a server shutting down, stepping
// down or out of reach, or of an operation past its time limit.
var mongoOutageCodes = []int{
	6,     // HostUnreachable
	7,     // HostNotFound
	50,    // MaxTimeMSExpired
	89,    // NetworkTimeout
	91,    // ShutdownInProgress
	189,   // PrimarySteppedDown
	10107, // NotWritablePrimary
	11600, // InterruptedAtShutdown
	11602, // InterruptedDueToReplStateChange
	13435, // NotPrimaryNoSecondaryOk
	13436, // NotPrimaryOrSecondary
}

// kafkaOutageErrors are producer errors of brokers that cannot be reached
// or cannot take writes for now.
var kafkaOutageErrors = []error{
	sarama.ErrOutOfBrokers, sarama.ErrNotConnected, sarama.ErrBrokerNotAvailable,
	sarama.ErrLeaderNotAvailable, sarama.ErrNotLeaderForPartition, sarama.ErrRequestTimedOut,
	sarama.ErrNetworkException, sarama.ErrNotEnoughReplicas, sarama.ErrNotEnoughReplicasAfterAppend,
	sarama.ErrKafkaStorageError, sarama.ErrControllerNotAvailable, sarama.ErrNotController,
}

// outage reports whether err means a dependency is unreachable or hung, and
// which one when the error itself tells.
func outage(err error) (Dependency, bool) {
	var pes sarama.ProducerErrors
	if errors.As(err, &pes) {
		// SendMessages returns one error per message, and the slice does
		// not unwrap.
		for _, pe := range pes {
			if _, ok := outage(pe.Err); ok {
				return Kafka, true
			}
		}
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) && mysqlOutageCodes[me.Number] {
		return Shard, true
	}
	var se mongo.ServerError
	if errors.As(err, &se) {
		for _, code := range mongoOutageCodes {
			if se.HasErrorCode(code) {
				return MongoDB, true
			}
		}
	}
	for _, e := range kafkaOutageErrors {
		if errors.Is(err, e) {
			return Kafka, true
		}
	}
	switch {
	case errors.Is(err, shard.ErrUnavailable),
		errors.Is(err, mysql.ErrInvalidConn),
		errors.Is(err, driver.ErrBadConn),
		errors.Is(err, sql.ErrConnDone):
		return Shard, true
	case errors.As(err, &topology.ServerSelectionError{}),
		errors.As(err, &topology.ConnectionError{}),
		errors.As(err, &topology.WaitQueueTimeoutError{}),
		errors.Is(err, mongo.ErrClientDisconnected),
		mongo.IsNetworkError(err),
		mongoLabel(err, "NetworkTimeoutError", "ExceededTimeLimitError"):
		return MongoDB, true
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		mongo.IsTimeout(err):
		return Unknown, true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return Unknown, true
	}
	return "", false
}

func mongoLabel(err error, labels ...string) bool {
	var le mongo.LabeledError
	if !errors.As(err, &le) {
		return false
	}
	for _, l := range labels {
		if le.HasErrorLabel(l) {
			return true
		}
	}
	return false
}

func transient(err error) bool {
	var me *mysql.MySQLError
	return errors.Is(err, projection.ErrConflict) || (errors.As(err, &me) && mysqlTransientCodes[me.Number])
}
