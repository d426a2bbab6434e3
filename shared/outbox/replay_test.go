package outbox_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderflow/orderflow/shared/outbox"
	"github.com/orderflow/orderflow/shared/sqlrows"
	"github.com/orderflow/orderflow/shared/testinfra"
	"github.com/orderflow/orderflow/shared/validation"
)

var now = time.Date(2026, 12, 31, 12, 0, 0, 0, time.UTC)

// putFailed inserts n FAILED rows and returns their ids.
func putFailed(t *testing.T, db *sql.DB, n int) []int64 {
	t.Helper()
	for done := 0; done < n; {
		chunk := min(n-done, 1000)
		args := make([]any, 0, 2*chunk)
		for i := range chunk {
			args = append(args, uuid.NewString(), done+i+1)
		}
		if _, err := db.Exec(`INSERT INTO outbox (event_id, event_type, order_no, order_version, occurred_at, status, attempts, last_error)
			VALUES `+strings.TrimSuffix(strings.Repeat("(?, 'OrderPlaced', ?, 1, NOW(6), 'FAILED', 10, 'refused'),", chunk), ","), args...); err != nil {
			t.Fatal(err)
		}
		done += chunk
	}
	rows, err := db.Query("SELECT id FROM outbox ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := sqlrows.ScanAll(rows, func(rows *sql.Rows) (int64, error) {
		var id int64
		err := rows.Scan(&id)
		return id, err
	})
	if err != nil || len(ids) != n {
		t.Fatalf("%d rows inserted (%v), want %d", len(ids), err, n)
	}
	return ids
}

func countStatus(t *testing.T, db *sql.DB, status string) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM outbox WHERE status = ?", status).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

type audit struct {
	actor, reason, request string
	rowCount               int64
	at                     time.Time
}

func audits(t *testing.T, db *sql.DB) []audit {
	t.Helper()
	rows, err := db.Query("SELECT actor, reason, request, row_count, replayed_at FROM outbox_replay_audit ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	out, err := sqlrows.ScanAll(rows, func(rows *sql.Rows) (audit, error) {
		var a audit
		err := rows.Scan(&a.actor, &a.reason, &a.request, &a.rowCount, &a.at)
		return a, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Every replay that changes rows is audited, the largest accepted request
// included, and a replay whose audit row cannot be written changes nothing.
func TestReplayAudit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// rows FAILED rows are inserted with ids of 19 digits, the widest an
		// id gets, so the request is as long as a request can be.
		rows    int
		byIDs   bool
		noAudit bool // the audit table is gone, so the audit insert fails
		// wantAudits are the row counts of the audit rows, in order.
		wantAudits []int64
	}{
		{name: "the largest request by ids", rows: outbox.MaxReplayIDs, byIDs: true, wantAudits: []int64{outbox.MaxReplayIDs}},
		{name: "by filter, one audit row per chunk", rows: 2500, wantAudits: []int64{1000, 1000, 500}},
		{name: "by ids, failing audit insert", rows: 10, byIDs: true, noAudit: true},
		{name: "by filter, failing audit insert", rows: 10, noAudit: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			topo := testinfra.Shards(t, 1)
			pools := testinfra.OpenShards(t, topo)
			db := testinfra.DB(t, topo.Shards[0].DSN)
			if _, err := db.Exec("ALTER TABLE outbox AUTO_INCREMENT = 1000000000000000000"); err != nil {
				t.Fatal(err)
			}
			ids := putFailed(t, db, tc.rows)
			if tc.noAudit {
				if _, err := db.Exec("DROP TABLE outbox_replay_audit"); err != nil {
					t.Fatal(err)
				}
			}
			req := outbox.ReplayRequest{Shard: "shard-0", Reason: "topic fixed", Actor: "oncall"}
			if tc.byIDs {
				req.IDs = ids
			}

			res, err := outbox.NewStore(pools, func() time.Time { return now }).Replay(context.Background(), req, nil)

			if tc.noAudit {
				if err == nil {
					t.Fatalf("Replay() = %+v, nil; want the audit insert's error", res)
				}
				if n := countStatus(t, db, "FAILED"); n != tc.rows {
					t.Errorf("%d of %d rows still FAILED after a replay that could not be audited, want all", n, tc.rows)
				}
				return
			}
			if err != nil {
				t.Fatalf("Replay(): %v", err)
			}
			if res.Total != int64(tc.rows) || countStatus(t, db, "PENDING") != tc.rows {
				t.Errorf("replayed %d, %d PENDING; want %d", res.Total, countStatus(t, db, "PENDING"), tc.rows)
			}
			got := audits(t, db)
			if len(got) != len(tc.wantAudits) {
				t.Fatalf("%d audit rows, want %d", len(got), len(tc.wantAudits))
			}
			for i, a := range got {
				var described struct {
					IDs []int64 `json:"ids"`
				}
				if err := json.Unmarshal([]byte(a.request), &described); err != nil {
					t.Fatalf("audit %d request %.80q: %v", i, a.request, err)
				}
				if a.actor != "oncall" || a.reason != "topic fixed" || a.rowCount != tc.wantAudits[i] || !a.at.Equal(now) ||
					len(described.IDs) != len(req.IDs) {
					t.Errorf("audit %d: %s %q %d rows at %v, %d ids recorded; want oncall, topic fixed, %d rows at %v, %d ids",
						i, a.actor, a.reason, a.rowCount, a.at, len(described.IDs), tc.wantAudits[i], now, len(req.IDs))
				}
			}
		})
	}
}

// A bad replay request names every bad field and changes nothing: no row
// leaves FAILED and no audit row is written.
func TestReplayRefusesBadRequests(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 2)
	store := outbox.NewStore(testinfra.OpenShards(t, topo), func() time.Time { return now })
	dbs := []*sql.DB{testinfra.DB(t, topo.Shards[0].DSN), testinfra.DB(t, topo.Shards[1].DSN)}
	ids := putFailed(t, dbs[0], 3)
	putFailed(t, dbs[1], 3)
	valid := func(r outbox.ReplayRequest) outbox.ReplayRequest {
		r.Reason, r.Actor = "topic fixed", "oncall"
		return r
	}
	tests := []struct {
		name       string
		req        outbox.ReplayRequest
		wantFields []string
	}{
		{name: "id zero", req: valid(outbox.ReplayRequest{Shard: "shard-0", IDs: []int64{ids[0], 0}}), wantFields: []string{"ids[1]"}},
		{name: "negative id", req: valid(outbox.ReplayRequest{Shard: "shard-0", IDs: []int64{-4}}), wantFields: []string{"ids[0]"}},
		{name: "ids and a filter", req: valid(outbox.ReplayRequest{Shard: "shard-0", IDs: ids, Filter: outbox.Filter{Status: outbox.StatusFailed}}),
			wantFields: []string{"filter"}},
		{name: "ids and a filter by time", req: valid(outbox.ReplayRequest{Shard: "shard-0", IDs: ids, Filter: outbox.Filter{Since: now.Add(-time.Hour)}}),
			wantFields: []string{"filter"}},
		{name: "ids and another shard's filter", req: valid(outbox.ReplayRequest{Shard: "shard-0", IDs: ids, Filter: outbox.Filter{Shard: "shard-1"}}),
			wantFields: []string{"filter.shard"}},
		{name: "two shards by filter", req: valid(outbox.ReplayRequest{Shard: "shard-0", Filter: outbox.Filter{Shard: "shard-1"}}),
			wantFields: []string{"filter.shard"}},
		{name: "unknown request shard by filter", req: valid(outbox.ReplayRequest{Shard: "shard-9"}), wantFields: []string{"shard"}},
		{name: "since after until", req: valid(outbox.ReplayRequest{Filter: outbox.Filter{Since: now, Until: now.Add(-time.Hour)}}),
			wantFields: []string{"filter.until"}},
		{name: "unknown event type", req: valid(outbox.ReplayRequest{Filter: outbox.Filter{EventType: "OrderEaten"}}),
			wantFields: []string{"filter.eventType"}},
		{name: "every field wrong", req: outbox.ReplayRequest{Shard: "shard-0", Filter: outbox.Filter{Shard: "shard-1", Status: "LOST", EventType: "OrderEaten"}},
			wantFields: []string{"reason", "actor", "filter.shard", "filter.status", "filter.eventType"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, dryRun := range []bool{false, true} {
				req := tc.req
				req.DryRun = dryRun
				res, err := store.Replay(t.Context(), req, nil)
				var invalid *validation.Error
				if !errors.As(err, &invalid) {
					t.Fatalf("dry run %v: Replay() = %+v, %v; want a validation error", dryRun, res, err)
				}
				var fields []string
				for _, v := range invalid.Violations {
					fields = append(fields, v.Field)
				}
				if !slices.Equal(fields, tc.wantFields) {
					t.Errorf("dry run %v: fields %v, want %v", dryRun, fields, tc.wantFields)
				}
			}
			for i, db := range dbs {
				if n := countStatus(t, db, "FAILED"); n != 3 {
					t.Errorf("shard-%d: %d rows FAILED after a refused replay, want 3", i, n)
				}
				if a := audits(t, db); len(a) != 0 {
					t.Errorf("shard-%d: audit rows %v after a refused replay, want none", i, a)
				}
			}
		})
	}
	// The same shard named twice is one shard: allowed.
	res, err := store.Replay(t.Context(), valid(outbox.ReplayRequest{Shard: "shard-0", IDs: ids[:1], Filter: outbox.Filter{Shard: "shard-0"}}), nil)
	if err != nil || res.Total != 1 {
		t.Errorf("replay of one id naming its shard twice: %+v, %v; want 1 row", res, err)
	}
}

func TestGetRefusesBadIDs(t *testing.T) {
	t.Parallel()
	store := outbox.NewStore(testinfra.OpenShards(t, testinfra.Shards(t, 1)), time.Now)
	tests := []struct {
		name       string
		shard      string
		id         int64
		wantFields []string
	}{
		{name: "id zero", shard: "shard-0", id: 0, wantFields: []string{"id"}},
		{name: "negative id", shard: "shard-0", id: -1, wantFields: []string{"id"}},
		{name: "unknown shard and id zero", shard: "shard-7", id: 0, wantFields: []string{"shard", "id"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := store.Get(t.Context(), tc.shard, tc.id)
			var invalid *validation.Error
			if !errors.As(err, &invalid) {
				t.Fatalf("Get() error = %v, want a validation error", err)
			}
			var fields []string
			for _, v := range invalid.Violations {
				fields = append(fields, v.Field)
			}
			if !slices.Equal(fields, tc.wantFields) {
				t.Errorf("fields %v, want %v", fields, tc.wantFields)
			}
		})
	}
}
