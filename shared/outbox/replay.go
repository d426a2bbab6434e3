package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/sqlrows"
	"github.com/orderflow/orderflow/shared/validation"
)

func shardClassify(name string, err error) error { return shard.Classify(name, err) }

// ReplayRequest says which rows to put back to PENDING: the given ids of one
// shard, or every row matching Filter (FAILED rows when Filter.Status is
// unset).
type ReplayRequest struct {
	Shard  string
	IDs    []int64
	Filter Filter
	DryRun bool
	Reason string
	Actor  string
}

// ReplayResult counts the rows replayed (or that would be) per shard.
type ReplayResult struct {
	PerShard map[string]int64
	Total    int64
	DryRun   bool
}

// Progress is told about each chunk of a long replay.
type Progress func(shard string, doneInShard, totalInShard int64)

// replayChunk bounds one UPDATE, so a large replay never holds locks on
// many rows at once and shows progress.
const replayChunk = 1000

// MaxReplayIDs bounds the ids of one request.
const MaxReplayIDs = 10000

// validate checks the request, and completes a replay by filter: the
// request's shard becomes the filter's, and FAILED its default status. A
// request names either ids or a filter, and at most one shard.
func (r *ReplayRequest) validate(s *Store) error {
	topo := s.pools.Topology()
	var v validation.Violations
	switch reason := strings.TrimSpace(r.Reason); {
	case reason == "":
		v.Add("reason", "must say why (it is recorded in the audit table)")
	case utf8.RuneCountInString(reason) > 512:
		v.Add("reason", "must be at most 512 characters")
	}
	switch {
	case strings.TrimSpace(r.Actor) == "":
		v.Add("actor", "must not be empty")
	case utf8.RuneCountInString(r.Actor) > 128:
		v.Add("actor", "must be at most 128 characters")
	}
	if r.Shard != "" && r.Filter.Shard != "" && r.Filter.Shard != r.Shard {
		v.Add("filter.shard", fmt.Sprintf("names shard %q while shard names %q: a replay is of one shard or of the filter's", r.Filter.Shard, r.Shard))
	}
	if len(r.IDs) > 0 {
		switch _, known := topo.DSN(r.Shard); {
		case r.Shard == "":
			v.Add("shard", "is required with ids")
		case !known:
			v.Add("shard", fmt.Sprintf("unknown shard %q", r.Shard))
		}
		if r.Filter.conditions() {
			v.Add("filter", "cannot be combined with ids: replay either the given rows or the rows a filter matches")
		}
		if len(r.IDs) > MaxReplayIDs {
			v.Add("ids", fmt.Sprintf("at most %d ids per request", MaxReplayIDs))
		}
		// The first bad id is enough to name: a list of thousands of ids
		// would otherwise make as many violations.
		for i, id := range r.IDs {
			if id < 1 {
				v.Add(fmt.Sprintf("ids[%d]", i), fmt.Sprintf("must be a positive id, got %d", id))
				break
			}
		}
		return v.Err()
	}
	if _, known := topo.DSN(r.Shard); r.Shard != "" && !known {
		v.Add("shard", fmt.Sprintf("unknown shard %q", r.Shard))
	} else if r.Shard != "" && r.Filter.Shard == "" {
		r.Filter.Shard = r.Shard
	}
	if r.Filter.Status == "" {
		r.Filter.Status = StatusFailed
	}
	if r.Filter.Status == StatusPending {
		v.Add("filter.status", "PENDING rows are already waiting to be published")
	}
	r.Filter.check(&v, "filter.", topo)
	return v.Err()
}

// Replay puts the chosen rows back to PENDING with attempts, last error and
// back-off cleared, so the relay publishes them again, and records the
// replay (who, when, why, what, how many) in each touched shard's audit
// table. Every status change commits in one transaction with its audit row,
// so no row is replayed unaudited: a replay by ids is one transaction on its
// shard, a replay by filter one per chunk of replayChunk rows (each chunk's
// audit row counts that chunk; the rows of one replay share its request and
// time). With DryRun it only counts.
func (s *Store) Replay(ctx context.Context, req ReplayRequest, progress Progress) (ReplayResult, error) {
	if err := req.validate(s); err != nil {
		return ReplayResult{}, err
	}
	res := ReplayResult{PerShard: map[string]int64{}, DryRun: req.DryRun}
	describe, err := json.Marshal(map[string]any{"shard": req.Shard, "ids": req.IDs, "filter": req.Filter})
	if err != nil {
		return res, fmt.Errorf("describing the replay: %w", err)
	}
	audit := auditRow{actor: req.Actor, reason: strings.TrimSpace(req.Reason), request: string(describe), at: s.now().UTC()}
	shards := []string{req.Shard}
	if len(req.IDs) == 0 {
		shards = req.Filter.shards(s.pools.Topology())
	}
	for _, name := range shards {
		n, err := s.replayShard(ctx, name, req, audit, progress)
		if err != nil {
			return res, fmt.Errorf("replaying on %s: %w", name, err)
		}
		res.PerShard[name] = n
		res.Total += n
	}
	return res, nil
}

// auditRow is what outbox_replay_audit records of one replay.
type auditRow struct {
	actor, reason, request string
	at                     time.Time
}

const auditSQL = `INSERT INTO outbox_replay_audit (actor, reason, request, dry_run, row_count, replayed_at) VALUES (?, ?, ?, FALSE, ?, ?)`

const resetSQL = `UPDATE outbox SET status = 'PENDING', attempts = 0, last_error = NULL, next_attempt_at = NULL, published_at = NULL WHERE id IN (`

// resetAudited runs one reset statement and, when it changed rows, the audit
// row counting them, in one transaction: either both commit or neither.
func (s *Store) resetAudited(ctx context.Context, name string, audit auditRow, query string, args []any) (int64, error) {
	var n int64
	err := s.pools.InTx(ctx, name, sql.LevelDefault, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, auditSQL, audit.actor, audit.reason, audit.request, n, audit.at); err != nil {
			return fmt.Errorf("recording the replay: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

func (s *Store) replayShard(ctx context.Context, name string, req ReplayRequest, audit auditRow, progress Progress) (int64, error) {
	db, err := s.pools.DB(name)
	if err != nil {
		return 0, err
	}
	if len(req.IDs) > 0 {
		q, args := sqlrows.In(req.IDs)
		if req.DryRun {
			var n int64
			err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM outbox WHERE status <> 'PENDING' AND id IN ("+q+")", args...).Scan(&n)
			return n, shard.Classify(name, err)
		}
		return s.resetAudited(ctx, name, audit, resetSQL+q+") AND status <> 'PENDING'", args)
	}
	where, args := req.Filter.where()
	var total int64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM outbox WHERE "+where, args...).Scan(&total); err != nil {
		return 0, shard.Classify(name, err)
	}
	if req.DryRun || total == 0 {
		return total, nil
	}
	// Walk the matching rows by id in chunks; rows that change status while
	// the replay runs are simply not matched again.
	var done, after int64
	for {
		rows, err := db.QueryContext(ctx, "SELECT id FROM outbox WHERE "+where+" AND id > ? ORDER BY id LIMIT ?",
			append(append([]any{}, args...), after, replayChunk)...)
		if err != nil {
			return done, shard.Classify(name, err)
		}
		ids, err := sqlrows.ScanAll(rows, func(rows *sql.Rows) (int64, error) {
			var id int64
			err := rows.Scan(&id)
			return id, err
		})
		if err != nil {
			return done, shard.Classify(name, err)
		}
		if len(ids) == 0 {
			return done, nil
		}
		after = ids[len(ids)-1]
		q, idArgs := sqlrows.In(ids)
		n, err := s.resetAudited(ctx, name, audit, resetSQL+q+") AND "+where, append(idArgs, args...))
		if err != nil {
			return done, err
		}
		done += n
		if progress != nil {
			progress(name, done, total)
		}
	}
}
