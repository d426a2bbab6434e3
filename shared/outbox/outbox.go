// Package outbox holds the SQL of the shards' outbox tables: the relay's
// publishing statements (Publishing: claim, mark, fail, clean up), and the
// operations operators need (stats, list, show, replay with an audit trail),
// shared by the relay's admin API and orderctl, which works on the shards
// directly so that it also works while no relay runs.
package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/orderflow/orderflow/shared/orderenum"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/sqlrows"
	"github.com/orderflow/orderflow/shared/validation"
)

// Status is the publishing state of an outbox row.
type Status string

// The statuses of an outbox row.
const (
	StatusPending   Status = "PENDING"
	StatusPublished Status = "PUBLISHED"
	StatusFailed    Status = "FAILED"
)

// LockPrefix starts the MySQL named lock a relay holds while it owns a
// shard; the database name completes it, so several orderflow databases on
// one server have separate locks.
const LockPrefix = "orderflow_relay:"

// LockNameSQL computes the lock name on the server.
const LockNameSQL = "CONCAT('" + LockPrefix + "', DATABASE())"

// Message is one outbox row.
type Message struct {
	Shard         string
	ID            int64
	EventID       string
	EventType     string
	OrderNo       int64
	OrderVersion  int32
	OccurredAt    time.Time
	Traceparent   string
	Status        Status
	Attempts      int32
	LastError     string
	NextAttemptAt *time.Time
	PublishedAt   *time.Time
}

// Columns is the select list that ScanMessage reads.
const Columns = "id, event_id, event_type, order_no, order_version, occurred_at, traceparent, status, attempts, last_error, next_attempt_at, published_at"

// ScanMessage reads one row selected with Columns.
func ScanMessage(shardName string, row interface{ Scan(...any) error }) (Message, error) {
	m := Message{Shard: shardName}
	var status string
	var lastError sql.NullString
	var next, published sql.NullTime
	if err := row.Scan(&m.ID, &m.EventID, &m.EventType, &m.OrderNo, &m.OrderVersion, &m.OccurredAt, &m.Traceparent,
		&status, &m.Attempts, &lastError, &next, &published); err != nil {
		return Message{}, err
	}
	m.Status = Status(status)
	m.LastError = lastError.String
	if next.Valid {
		m.NextAttemptAt = &next.Time
	}
	if published.Valid {
		m.PublishedAt = &published.Time
	}
	return m, nil
}

// Filter selects outbox rows. Zero fields match everything.
type Filter struct {
	Shard     string
	Status    Status
	EventType string
	// Since and Until bound occurred_at: Since <= occurred_at < Until.
	Since time.Time
	Until time.Time
}

// ErrNotFound means no outbox row has the requested id.
var ErrNotFound = errors.New("outbox message not found")

// Validate checks a filter against the topology.
func (f Filter) Validate(topo shard.Topology) error {
	var v validation.Violations
	f.check(&v, "", topo)
	return v.Err()
}

// check adds a violation, its field prefixed with prefix ("filter." when
// the filter is part of a larger request), for each bad field of f.
func (f Filter) check(v *validation.Violations, prefix string, topo shard.Topology) {
	if f.Shard != "" {
		if _, ok := topo.DSN(f.Shard); !ok {
			v.Add(prefix+"shard", fmt.Sprintf("unknown shard %q (known: %s)", f.Shard, strings.Join(topo.Names(), ", ")))
		}
	}
	switch f.Status {
	case "", StatusPending, StatusPublished, StatusFailed:
	default:
		v.Add(prefix+"status", fmt.Sprintf("unknown status %q", f.Status))
	}
	if f.EventType != "" && !orderenum.KnownEventType(f.EventType) {
		v.Add(prefix+"eventType", fmt.Sprintf("unknown event type %q (known: %s)", f.EventType, strings.Join(orderenum.EventTypeNames(), ", ")))
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		v.Add(prefix+"until", "must be after since")
	}
}

// conditions tells whether f selects by anything but its shard.
func (f Filter) conditions() bool {
	return f.Status != "" || f.EventType != "" || !f.Since.IsZero() || !f.Until.IsZero()
}

// where renders the filter (without the shard) as SQL conditions.
func (f Filter) where() (string, []any) {
	conds := []string{"1=1"}
	var args []any
	if f.Status != "" {
		conds = append(conds, "status = ?")
		args = append(args, string(f.Status))
	}
	if f.EventType != "" {
		conds = append(conds, "event_type = ?")
		args = append(args, f.EventType)
	}
	if !f.Since.IsZero() {
		conds = append(conds, "occurred_at >= ?")
		args = append(args, f.Since.UTC())
	}
	if !f.Until.IsZero() {
		conds = append(conds, "occurred_at < ?")
		args = append(args, f.Until.UTC())
	}
	return strings.Join(conds, " AND "), args
}

// shards lists the shards a filter covers, in topology order.
func (f Filter) shards(topo shard.Topology) []string {
	if f.Shard != "" {
		return []string{f.Shard}
	}
	return topo.Names()
}

// Store runs the operator's outbox operations over every shard.
type Store struct {
	pools *shard.Pools
	now   func() time.Time
}

// NewStore returns a store over the shards. now is the clock (time.Now in
// production).
func NewStore(pools *shard.Pools, now func() time.Time) *Store {
	return &Store{pools: pools, now: now}
}

// Topology is the topology the store works on.
func (s *Store) Topology() shard.Topology { return s.pools.Topology() }

// ShardStats is the state of one shard's outbox.
type ShardStats struct {
	Shard            string
	Pending          int64
	Published        int64
	Failed           int64
	OldestPendingAge time.Duration
	// Owner is the relay instance holding the shard's lock, "" when none.
	Owner string
	// Err is set when the shard could not be read; the other fields are zero.
	Err error
}

// Stats reads every shard, published rows included, for operators; a shard
// that cannot be read reports its error instead of failing the whole call.
func (s *Store) Stats(ctx context.Context) []ShardStats {
	return s.stats(ctx, true)
}

// Backlog is Stats without the count of published rows (Published is 0).
// That count reads every row kept for the retention period, millions at
// peak volume, so what runs every few seconds reads only the waiting and
// failed rows, through the status index.
func (s *Store) Backlog(ctx context.Context) []ShardStats {
	return s.stats(ctx, false)
}

// ShardBacklog is Backlog of one shard, for callers that bound each
// shard's answer on its own (a hung shard then delays only itself).
func (s *Store) ShardBacklog(ctx context.Context, shardName string) ShardStats {
	return s.shardStats(ctx, shardName, false)
}

func (s *Store) stats(ctx context.Context, countPublished bool) []ShardStats {
	names := s.pools.Topology().Names()
	out := make([]ShardStats, len(names))
	done := make(chan struct{}, len(names))
	for i, name := range names {
		go func() {
			out[i] = s.shardStats(ctx, name, countPublished)
			done <- struct{}{}
		}()
	}
	for range names {
		<-done
	}
	return out
}

func (s *Store) shardStats(ctx context.Context, name string, countPublished bool) ShardStats {
	st := ShardStats{Shard: name}
	db, err := s.pools.DB(name)
	if err != nil {
		st.Err = err
		return st
	}
	query := "SELECT status, COUNT(*) FROM outbox WHERE status IN ('PENDING', 'FAILED') GROUP BY status"
	if countPublished {
		query = "SELECT status, COUNT(*) FROM outbox GROUP BY status"
	}
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		st.Err = shard.Classify(name, err)
		return st
	}
	type count struct {
		status Status
		n      int64
	}
	counts, err := sqlrows.ScanAll(rows, func(rows *sql.Rows) (count, error) {
		var c count
		err := rows.Scan(&c.status, &c.n)
		return c, err
	})
	if err != nil {
		st.Err = shard.Classify(name, err)
		return st
	}
	for _, c := range counts {
		switch c.status {
		case StatusPending:
			st.Pending = c.n
		case StatusPublished:
			st.Published = c.n
		case StatusFailed:
			st.Failed = c.n
		}
	}
	var oldest sql.NullTime
	if err := db.QueryRowContext(ctx, "SELECT MIN(occurred_at) FROM outbox WHERE status = 'PENDING'").Scan(&oldest); err != nil {
		st.Err = shard.Classify(name, err)
		return st
	}
	if oldest.Valid {
		st.OldestPendingAge = max(s.now().Sub(oldest.Time), 0)
	}
	var owner sql.NullString
	err = db.QueryRowContext(ctx, `SELECT o.relay_id FROM outbox_relay_owner o
		WHERE o.lock_name = `+LockNameSQL+` AND IS_USED_LOCK(o.lock_name) IS NOT NULL`).Scan(&owner)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		st.Err = shard.Classify(name, err)
		return st
	}
	st.Owner = owner.String
	return st
}

// Get reads one row.
func (s *Store) Get(ctx context.Context, shardName string, id int64) (Message, error) {
	var v validation.Violations
	if _, ok := s.pools.Topology().DSN(shardName); !ok {
		v.Add("shard", fmt.Sprintf("unknown shard %q", shardName))
	}
	if id < 1 {
		v.Add("id", fmt.Sprintf("must be a positive id, got %d", id))
	}
	if err := v.Err(); err != nil {
		return Message{}, err
	}
	db, err := s.pools.DB(shardName)
	if err != nil {
		return Message{}, err
	}
	m, err := ScanMessage(shardName, db.QueryRowContext(ctx, "SELECT "+Columns+" FROM outbox WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Message{}, ErrNotFound
	}
	if err != nil {
		return Message{}, shard.Classify(shardName, err)
	}
	return m, nil
}
