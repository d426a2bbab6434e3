package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/sqlrows"
)

// Publishing is the relay's work on one shard's outbox: claiming the rows to
// publish, marking them published or failed, and deleting old published
// ones. Claims and marks run on conn, the connection the caller chose (the
// relay's: the one holding the shard's lock, so a relay that lost the lock
// cannot go on marking rows); the cleanup runs on the shard's pool (see
// DeletePublished). Every statement goes through the shard's circuit breaker
// and statement timeout (shard.Pools.Call and Do). conn must read committed
// data (see claimSQL).
type Publishing struct {
	pools *shard.Pools
	shard string
	conn  *sql.Conn
}

// NewPublishing returns the outbox work on shardName over conn.
func NewPublishing(pools *shard.Pools, shardName string, conn *sql.Conn) *Publishing {
	return &Publishing{pools: pools, shard: shardName, conn: conn}
}

// Failure is the new state of a row whose publish failed.
type Failure struct {
	ID            int64
	Attempts      int32
	Error         string
	NextAttemptAt time.Time
	// Failed parks the row as FAILED (attempts used up).
	Failed bool
}

// maxErrorLength is the size of outbox.last_error.
const maxErrorLength = 1024

// claimSQL picks the rows to publish next: PENDING, due, oldest first, and
// only the earliest unpublished event of each order, so one order's events
// reach Kafka in the order they were written even across retries. Reading
// under READ COMMITTED (the relay's connection setting) takes no gap locks
// that would slow the order writers.
const claimSQL = "SELECT " + Columns + ` FROM outbox o
	WHERE o.status = 'PENDING' AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= ?)
	AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.order_no = o.order_no AND p.status = 'PENDING' AND p.id < o.id)
	ORDER BY o.id LIMIT ?`

// Claim reads up to limit rows to publish.
func (p *Publishing) Claim(ctx context.Context, limit int, now time.Time) ([]Message, error) {
	var out []Message
	err := p.pools.Call(ctx, p.shard, func(ctx context.Context) error {
		rows, err := p.conn.QueryContext(ctx, claimSQL, now.UTC(), limit)
		if err != nil {
			return fmt.Errorf("claiming outbox rows: %w", err)
		}
		out, err = sqlrows.ScanAll(rows, func(rows *sql.Rows) (Message, error) { return ScanMessage(p.shard, rows) })
		if err != nil {
			return fmt.Errorf("reading outbox rows: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// MarkPublished records that Kafka acknowledged the rows.
func (p *Publishing) MarkPublished(ctx context.Context, ids []int64, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	in, idArgs := sqlrows.In(ids)
	args := append([]any{at.UTC()}, idArgs...)
	return p.pools.Call(ctx, p.shard, func(ctx context.Context) error {
		_, err := p.conn.ExecContext(ctx, "UPDATE outbox SET status = 'PUBLISHED', published_at = ?, next_attempt_at = NULL WHERE id IN ("+
			in+")", args...)
		if err != nil {
			return fmt.Errorf("marking rows published: %w", err)
		}
		return nil
	})
}

// RecordFailures stores each failed row's attempt count, error and next
// attempt time, or moves it to FAILED, in one round trip.
func (p *Publishing) RecordFailures(ctx context.Context, failures []Failure) error {
	if len(failures) == 0 {
		return nil
	}
	var b shard.Batch
	for _, f := range failures {
		status := StatusPending
		if f.Failed {
			status = StatusFailed
		}
		var next any
		if !f.Failed {
			next = f.NextAttemptAt.UTC()
		}
		b.Add("UPDATE outbox SET status = ?, attempts = ?, last_error = ?, next_attempt_at = ? WHERE id = ?",
			string(status), f.Attempts, truncate(f.Error, maxErrorLength), next, f.ID)
	}
	return p.pools.Call(ctx, p.shard, func(ctx context.Context) error {
		if err := b.Exec(ctx, p.conn); err != nil {
			return fmt.Errorf("recording publish failures: %w", err)
		}
		return nil
	})
}

// DeletePublished deletes up to limit PUBLISHED rows published before
// olderThan, oldest first, in one short statement. It runs on a connection
// of the shard's pool, not on conn: a statement that outlives its timeout
// makes the driver close its connection, and on conn that would release the
// shard's lock and stop the publishing with it. Old published rows need no
// lock: they no longer change, and deleting one twice deletes nothing.
func (p *Publishing) DeletePublished(ctx context.Context, olderThan time.Time, limit int) (int64, error) {
	var n int64
	err := p.pools.Do(ctx, p.shard, func(ctx context.Context, db *sql.DB) error {
		res, err := db.ExecContext(ctx,
			"DELETE FROM outbox WHERE status = 'PUBLISHED' AND published_at < ? ORDER BY published_at LIMIT ?", olderThan.UTC(), limit)
		if err != nil {
			return fmt.Errorf("deleting published rows: %w", err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}

// truncate cuts s to at most n bytes, at a character boundary: half a
// UTF-8 character is an invalid string the server refuses, and with it the
// whole batch of failures.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
