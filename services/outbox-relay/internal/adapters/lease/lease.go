// Package lease is the relay's ownership of a shard: a MySQL named lock held
// on a dedicated connection, the owner row operators see, and its heartbeat.
// The outbox statements themselves are the outbox's (outbox.Publishing); the
// lease only hands them the connection that holds the lock.
package lease

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/orderflow/orderflow/services/outbox-relay/internal/relay"
	"github.com/orderflow/orderflow/shared/outbox"
	"github.com/orderflow/orderflow/shared/shard"
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
		held := &Lease{pools: l.pools, shard: shardName, conn: conn, lockName: lockName, relayID: l.relayID,
			outbox: outbox.NewPublishing(l.pools, shardName, conn)}
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
// The relay's claims and marks run on that connection, so a relay that lost
// the connection (and with it the lock) cannot go on marking rows; only the
// cleanup of old published rows uses the shard's pool (outbox.Publishing).
// Every statement goes through the shard's circuit breaker and statement
// timeout (shard.Pools.Call): a shard that stops answering fails the
// statement in time, and with it the lease.
type Lease struct {
	pools    *shard.Pools
	shard    string
	conn     *sql.Conn
	lockName string
	relayID  string
	outbox   *outbox.Publishing
}

// Outbox is the shard's outbox, worked on the connection holding the lock.
func (l *Lease) Outbox() relay.Outbox { return l.outbox }

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
