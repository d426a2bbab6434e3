package dlq

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orderflow/orderflow/shared/deadletter"
)

// Collections of the read side's database that hold the DLQ's state.
const (
	ResolvedCollection = deadletter.ResolvedCollection
	ReplaysCollection  = "dlq_replays"
)

// Resolutions of a worked-off entry.
const (
	// ResolutionReplayed: its order was re-projected.
	ResolutionReplayed = "replayed"
	// ResolutionMissing: its order is not on its shard any more (purged or
	// never placed), so there is nothing to project.
	ResolutionMissing = "order-missing"
	// ResolutionDiscarded: undecodable, discarded by an operator.
	ResolutionDiscarded = "discarded"
)

// Resolution is how and when an entry was worked off.
type Resolution struct {
	ID         string    `bson:"_id"`
	Topic      string    `bson:"topic"`
	Partition  int32     `bson:"partition"`
	Offset     int64     `bson:"offset"`
	OrderNo    int64     `bson:"orderNo"`
	Resolution string    `bson:"resolution"`
	ReplayID   string    `bson:"replayId"`
	Reason     string    `bson:"reason"`
	Actor      string    `bson:"actor"`
	At         time.Time `bson:"at"`
}

// Store keeps the worked-off marks and the replay audit.
type Store struct {
	resolved *mongo.Collection
	replays  *mongo.Collection
}

// NewStore returns the store in the read side's database.
func NewStore(db *mongo.Database) *Store {
	return &Store{resolved: db.Collection(ResolvedCollection), replays: db.Collection(ReplaysCollection)}
}

// Resolved returns the marks of topic's entries, by entry id.
func (s *Store) Resolved(ctx context.Context, topic string) (map[string]Resolution, error) {
	cur, err := s.resolved.Find(ctx, bson.D{{Key: "topic", Value: topic}})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ResolvedCollection, err)
	}
	var all []Resolution
	if err := cur.All(ctx, &all); err != nil {
		return nil, fmt.Errorf("reading %s: %w", ResolvedCollection, err)
	}
	out := make(map[string]Resolution, len(all))
	for _, r := range all {
		out[r.ID] = r
	}
	return out, nil
}

// Resolve marks entries worked off (a mark already there is replaced by the
// newer one).
func (s *Store) Resolve(ctx context.Context, marks []Resolution) error {
	if len(marks) == 0 {
		return nil
	}
	models := make([]mongo.WriteModel, len(marks))
	for i, m := range marks {
		models[i] = mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: m.ID}}).SetReplacement(m).SetUpsert(true)
	}
	if _, err := s.resolved.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err != nil {
		return fmt.Errorf("marking %d dead letters worked off: %w", len(marks), err)
	}
	return nil
}

// Audit is one replay's record in dlq_replays.
type Audit struct {
	ID         string       `bson:"_id"`
	Actor      string       `bson:"actor"`
	Reason     string       `bson:"reason"`
	Topic      string       `bson:"topic"`
	DryRun     bool         `bson:"dryRun"`
	Discard    bool         `bson:"discard"`
	Filter     AuditFilter  `bson:"filter"`
	Entries    []string     `bson:"entries"`
	StartedAt  time.Time    `bson:"startedAt"`
	FinishedAt time.Time    `bson:"finishedAt,omitempty"`
	Status     string       `bson:"status"`
	Outcome    AuditOutcome `bson:"outcome"`
	Error      string       `bson:"error,omitempty"`
}

// AuditFilter is the filter a replay was given.
type AuditFilter struct {
	Reasons []string  `bson:"reasons,omitempty"`
	Since   time.Time `bson:"since,omitempty"`
	Until   time.Time `bson:"until,omitempty"`
	Orders  []int64   `bson:"orders,omitempty"`
	All     bool      `bson:"all"`
}

// AuditOutcome counts what a replay did (or, dry, would do).
type AuditOutcome struct {
	Replayed    int `bson:"replayed"`
	Missing     int `bson:"orderMissing"`
	Undecodable int `bson:"undecodable"`
	Discarded   int `bson:"discarded"`
	Projected   int `bson:"documentsWritten"`
	External    int `bson:"externalEvents"`
}

// Audit statuses.
const (
	AuditRunning = "running"
	AuditDone    = "done"
	AuditFailed  = "failed"
)

// StartAudit records a replay before it changes anything, so an aborted
// replay leaves its record too.
func (s *Store) StartAudit(ctx context.Context, a Audit) error {
	if _, err := s.replays.InsertOne(ctx, a); err != nil {
		return fmt.Errorf("recording the replay in %s: %w", ReplaysCollection, err)
	}
	return nil
}

// FinishAudit records a replay's outcome.
func (s *Store) FinishAudit(ctx context.Context, a Audit) error {
	if _, err := s.replays.ReplaceOne(ctx, bson.D{{Key: "_id", Value: a.ID}}, a); err != nil {
		return fmt.Errorf("recording the replay's outcome in %s: %w", ReplaysCollection, err)
	}
	return nil
}

// Audits returns the replay records, oldest first.
func (s *Store) Audits(ctx context.Context) ([]Audit, error) {
	cur, err := s.replays.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "startedAt", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ReplaysCollection, err)
	}
	var out []Audit
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("reading %s: %w", ReplaysCollection, err)
	}
	return out, nil
}
