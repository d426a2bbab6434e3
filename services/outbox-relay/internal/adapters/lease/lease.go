// Package lease is the relay's access to one shard's outbox: ownership of the
// shard through a MySQL named lock, and claiming, marking and cleaning rows on
// the connection that holds the lock.
package lease

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/orderflow/orderflow/services/outbox-relay/internal/relay"
	"github.com/orderflow/orderflow/shared/outbox"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/sqlrows"
)

// Locker takes ownership of shards for one relay instance.
type Locker struct {
	pools   *shard.Pools
	relayID string
}

// NewLocker returns a locker that records relayID as the owner.
func NewLocker(pools *shard.Pools, relayID string) *Locker {
	return &Locker{pools: pools, relayID: relayID}
}

// Acquire tries, without waiting, to take the shard's relay lock on a
// dedicated connection. The lock lives as long as that connection: a relay
// that is killed loses its connections, the server releases the lock, and
// another relay's next attempt takes the shard over.
func (l *Locker) Acquire(ctx context.Context, shardName string) (relay.Lease, bool, error) {
	var lease *Lease
	err := l.pools.Call(ctx, shardName, func(ctx context.Context) error {
		conn, err := l.pools.Conn(ctx, shardName)
		if err != nil {
			return err
		}
		var got sql.NullInt64
		var lockName string
		if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK("+outbox.LockNameSQL+", 0), "+outbox.LockNameSQL).Scan(&got, &lockName); err != nil {
			_ = conn.Close()
			return err
		}
		if got.Int64 != 1 {
			_ = conn.Close()
			return nil
		}
		held := &Lease{pools: l.pools, shard: shardName, conn: conn, lockName: lockName, relayID: l.relayID}
		// Everything the relay runs on this connection reads committed data and
		// takes no gap locks, whatever the server's default level is.
		if _, err := conn.ExecContext(ctx, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"); err != nil {
			held.Release()
			return err
		}
		now := time.Now().UTC()
		if _, err := conn.ExecContext(ctx, `INSERT INTO outbox_relay_owner (lock_name, relay_id, acquired_at, heartbeat_at)
			VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE relay_id = VALUES(relay_id), acquired_at = VALUES(acquired_at),
			heartbeat_at = VALUES(heartbeat_at)`, lockName, l.relayID, now, now); err != nil {
			held.Release()
			return err
		}
		lease = held
		return nil
	})
	if err != nil || lease == nil {
		return nil, false, err
	}
	return lease, true, nil
}

// Lease is ownership of one shard, bound to the connection holding the lock.
// All of the relay's work on the shard runs on that connection, so a relay
// that lost the connection (and with it the lock) cannot go on marking rows.
// Every statement goes through the shard's circuit breaker and statement
// timeout (shard.Pools.Call): a shard that stops answering fails the
// statement in time, and with it the lease.
type Lease struct {
	pools    *shard.Pools
	shard    string
	conn     *sql.Conn
	lockName string
	relayID  string
}

// claimSQL picks the rows to publish next: PENDING, due, oldest first, and
// only the earliest unpublished event of each order, so one order's events
// reach Kafka in the order they were written even across retries. Reading
// under READ COMMITTED (the connection's setting, see Claim) takes no gap
// locks that would slow the order writers.
const claimSQL = "SELECT " + outbox.Columns + ` FROM outbox o
	WHERE o.status = 'PENDING' AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= ?)
	AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.order_no = o.order_no AND p.status = 'PENDING' AND p.id < o.id)
	ORDER BY o.id LIMIT ?`

// Claim reads up to limit rows to publish.
func (l *Lease) Claim(ctx context.Context, limit int, now time.Time) ([]outbox.Message, error) {
	var out []outbox.Message
	err := l.pools.Call(ctx, l.shard, func(ctx context.Context) error {
		rows, err := l.conn.QueryContext(ctx, claimSQL, now.UTC(), limit)
		if err != nil {
			return fmt.Errorf("claiming outbox rows: %w", err)
		}
		out, err = sqlrows.ScanAll(rows, func(rows *sql.Rows) (outbox.Message, error) { return outbox.ScanMessage(l.shard, rows) })
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
func (l *Lease) MarkPublished(ctx context.Context, ids []int64, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	in, idArgs := sqlrows.In(ids)
	args := append([]any{at.UTC()}, idArgs...)
	return l.pools.Call(ctx, l.shard, func(ctx context.Context) error {
		_, err := l.conn.ExecContext(ctx, "UPDATE outbox SET status = 'PUBLISHED', published_at = ?, next_attempt_at = NULL WHERE id IN ("+
			in+")", args...)
		if err != nil {
			return fmt.Errorf("marking rows published: %w", err)
		}
		return nil
	})
}

// RecordFailures stores each failed row's attempt count, error and next
// attempt time, or moves it to FAILED, in one round trip.
func (l *Lease) RecordFailures(ctx context.Context, failures []relay.Failure) error {
	if len(failures) == 0 {
		return nil
	}
	var b shard.Batch
	for _, f := range failures {
		status := outbox.StatusPending
		if f.Failed {
			status = outbox.StatusFailed
		}
		var next any
		if !f.Failed {
			next = f.NextAttemptAt.UTC()
		}
		b.Add("UPDATE outbox SET status = ?, attempts = ?, last_error = ?, next_attempt_at = ? WHERE id = ?",
			string(status), f.Attempts, truncate(f.Error, 1024), next, f.ID)
	}
	return l.pools.Call(ctx, l.shard, func(ctx context.Context) error {
		if err := b.Exec(ctx, l.conn); err != nil {
			return fmt.Errorf("recording publish failures: %w", err)
		}
		return nil
	})
}

// Cleanup deletes up to limit PUBLISHED rows published before olderThan,
// oldest first, in one short statement.
func (l *Lease) Cleanup(ctx context.Context, olderThan time.Time, limit int) (int64, error) {
	var n int64
	err := l.pools.Call(ctx, l.shard, func(ctx context.Context) error {
		res, err := l.conn.ExecContext(ctx,
			"DELETE FROM outbox WHERE status = 'PUBLISHED' AND published_at < ? ORDER BY published_at LIMIT ?", olderThan.UTC(), limit)
		if err != nil {
			return fmt.Errorf("deleting published rows: %w", err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}

// Heartbeat proves the lock connection is alive and refreshes the owner row.
func (l *Lease) Heartbeat(ctx context.Context) error {
	return l.pools.Call(ctx, l.shard, func(ctx context.Context) error {
		_, err := l.conn.ExecContext(ctx, "UPDATE outbox_relay_owner SET heartbeat_at = ? WHERE lock_name = ? AND relay_id = ?",
			time.Now().UTC(), l.lockName, l.relayID)
		if err != nil {
			return fmt.Errorf("heartbeat: %w", err)
		}
		return nil
	})
}

// Release gives the shard up: RELEASE_LOCK, then the connection goes back.
func (l *Lease) Release() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = l.conn.ExecContext(ctx, "DO RELEASE_LOCK(?)", l.lockName)
	_ = l.conn.Close()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
