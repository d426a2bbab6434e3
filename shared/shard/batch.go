package shard

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"
	"time"
)

// Batch is a list of write statements for one shard that ExecAtomic sends
// in a single round trip, wrapped in a transaction. Writing an order touches
// four tables; sending them one statement at a time cost most of the
// service's CPU in socket writes, so they travel together.
type Batch struct {
	sql  strings.Builder
	args []any
}

// Add appends a statement with its arguments. Statements must not contain
// semicolons of their own, and values always go through placeholders.
func (b *Batch) Add(query string, args ...any) {
	if b.sql.Len() > 0 {
		b.sql.WriteString(";\n")
	}
	b.sql.WriteString(query)
	b.args = append(b.args, args...)
}

// Len reports whether the batch has statements (0 when empty).
func (b *Batch) Len() int { return b.sql.Len() }

// ExecAtomic runs the batch as one transaction in one round trip:
// START TRANSACTION, the statements, COMMIT. The server stops at the first
// failing statement; the transaction is then rolled back on the same
// connection, or the connection is discarded if even that fails, so nothing
// of a failed batch is ever committed. It goes through the shard's circuit
// breaker with StatementTimeout (see Do).
func (p *Pools) ExecAtomic(ctx context.Context, shard string, b *Batch) error {
	return p.ExecAtomicFor(ctx, shard, b, 1, time.Now())
}

// ExecAtomicFor is ExecAtomic for a batch that holds the writes of several
// callers (a group commit): calls is how many, since is when the first of
// them asked. The statement timeout counts from since, so that the wait for
// a group counts against each caller's deadline as a wait for a connection
// does, and the circuit breaker counts the outcome once per caller.
func (p *Pools) ExecAtomicFor(ctx context.Context, shard string, b *Batch, calls int, since time.Time) error {
	return p.atomicFor(ctx, shard, calls, since, p.cfg.StatementTimeout, func(ctx context.Context, tx *Atomic) error {
		return tx.Commit(ctx, b)
	})
}

// AtomicFor runs fn as one transaction on one connection of the shard, for
// calls callers the first of whom asked at since (see ExecAtomicFor), within
// TxTimeout. fn reads with tx.Query and ends with tx.Commit; the transaction
// is rolled back if fn returns an error, and a fn that returns without
// committing (a bug) gets errNotCommitted.
func (p *Pools) AtomicFor(ctx context.Context, shard string, calls int, since time.Time, fn func(ctx context.Context, tx *Atomic) error) error {
	return p.atomicFor(ctx, shard, calls, since, p.cfg.TxTimeout, fn)
}

func (p *Pools) atomicFor(ctx context.Context, shard string, calls int, since time.Time, timeout time.Duration, fn func(ctx context.Context, tx *Atomic) error) error {
	if _, err := p.DB(shard); err != nil {
		return err
	}
	return p.callFor(ctx, shard, calls, since, timeout, func(ctx context.Context) error {
		conn, err := p.Conn(ctx, shard)
		if err != nil {
			return err
		}
		defer conn.Close()
		tx := &Atomic{conn: conn}
		err = fn(ctx, tx)
		if err == nil && !tx.committed {
			err = errNotCommitted
		}
		if tx.committed || !tx.begun {
			return err
		}
		if _, rbErr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rbErr != nil {
			// The server rolls back the open transaction when the connection
			// closes; make sure the pool does not hand this one out again.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		return err
	})
}

// errNotCommitted is what AtomicFor returns for a transaction that its
// function neither committed nor failed: the caller must not believe it
// wrote anything.
var errNotCommitted = errors.New("the transaction was neither committed nor failed; rolled back")

// Atomic is a transaction whose START TRANSACTION travels with its first
// statements and whose COMMIT with its last: a transaction that reads and
// then writes costs the shard two round trips, not the four of a sql.Tx
// (BEGIN, read, write, COMMIT). It is not safe for concurrent use.
type Atomic struct {
	conn             *sql.Conn
	begun, committed bool
}

// begin returns what opens the transaction, once: the prefix of the first
// round trip.
func (tx *Atomic) begin() string {
	if tx.begun {
		return ""
	}
	tx.begun = true
	return "START TRANSACTION;\n"
}

// Query runs query (one statement or several, whose result sets come back
// together) inside the transaction. The rows must be closed before the next
// call. A transaction that reads is READ COMMITTED whatever the server's
// default: the shards run with it, and under REPEATABLE READ a locking read
// of an order that does not exist would take a gap lock past the newest
// order, in the way of every placement of other instances. (One that only
// writes, ExecAtomic's, sends no such statement on its hot path.)
func (tx *Atomic) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	prefix := ""
	if !tx.begun {
		prefix = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED;\n"
	}
	return tx.conn.QueryContext(ctx, prefix+tx.begin()+query, args...)
}

// Commit runs b's statements and commits, in one round trip. The server
// stops at the first failing statement, before the COMMIT; the transaction
// is then rolled back (see AtomicFor), so nothing of a failed batch is ever
// committed.
func (tx *Atomic) Commit(ctx context.Context, b *Batch) error {
	query := tx.begin()
	if b.Len() > 0 {
		query += b.sql.String() + ";\n"
	}
	_, err := tx.conn.ExecContext(ctx, query+"COMMIT", b.args...)
	tx.committed = err == nil
	return err
}

// Execer is what a batch can run on: a transaction, a pinned connection or
// a pool.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Exec sends the batch in one round trip on e, without adding a transaction
// of its own (inside a transaction it is part of that transaction).
func (b *Batch) Exec(ctx context.Context, e Execer) error {
	_, err := e.ExecContext(ctx, b.sql.String(), b.args...)
	return err
}
