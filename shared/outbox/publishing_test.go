package outbox_test

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderflow/orderflow/shared/outbox"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// putRow inserts one outbox row and returns its id.
func putRow(t *testing.T, db *sql.DB, orderNo int64, version int32, status string, publishedAt, nextAttemptAt any) int64 {
	t.Helper()
	res, err := db.Exec(`INSERT INTO outbox (event_id, event_type, order_no, order_version, occurred_at, status, published_at, next_attempt_at)
		VALUES (?, 'OrderPlaced', ?, ?, NOW(6), ?, ?, ?)`, uuid.NewString(), orderNo, version, status, publishedAt, nextAttemptAt)
	if err != nil {
		t.Fatal(err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func ids(msgs []outbox.Message) []int64 {
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

// The relay's statements, against MariaDB: what a claim picks, and what
// marking, failing and cleaning do to the rows.
func TestPublishing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	topo := testinfra.Shards(t, 1)
	pools := testinfra.OpenShards(t, topo)
	name := topo.Shards[0].Name
	db := testinfra.DB(t, topo.Shards[0].DSN)
	conn, err := pools.Conn(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	p := outbox.NewPublishing(pools, name, conn)

	first := putRow(t, db, 1, 1, "PENDING", nil, nil)
	second := putRow(t, db, 1, 2, "PENDING", nil, nil) // behind first: same order
	other := putRow(t, db, 2, 1, "PENDING", nil, nil)
	multibyte := putRow(t, db, 7, 1, "PENDING", nil, nil)
	notDue := putRow(t, db, 3, 1, "PENDING", nil, now.Add(time.Hour))
	putRow(t, db, 4, 1, "FAILED", nil, nil)
	oldPublished := putRow(t, db, 5, 1, "PUBLISHED", now.Add(-48*time.Hour), nil)
	recent := putRow(t, db, 6, 1, "PUBLISHED", now.Add(-time.Hour), nil)

	claimed, err := p.Claim(ctx, 10, now)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(claimed), []int64{first, other, multibyte}; !slices.Equal(got, want) {
		t.Fatalf("claimed %v, want %v (one order's earliest event, due rows only)", got, want)
	}
	if limited, err := p.Claim(ctx, 1, now); err != nil || !slices.Equal(ids(limited), []int64{first}) {
		t.Fatalf("claim with limit 1 = %v, %v; want [%d]", ids(limited), err, first)
	}

	if err := p.MarkPublished(ctx, []int64{first}, now); err != nil {
		t.Fatal(err)
	}
	if err := p.RecordFailures(ctx, []outbox.Failure{
		{ID: other, Attempts: 10, Error: strings.Repeat("x", 2000), Failed: true},
		{ID: second, Attempts: 1, Error: "refused", NextAttemptAt: now.Add(time.Minute)},
		// 1,024 bytes would end inside a two-byte character.
		{ID: multibyte, Attempts: 10, Error: "x" + strings.Repeat("é", 600), Failed: true},
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		id         int64
		wantStatus string
		wantErrLen int
	}{
		{name: "acknowledged row is published", id: first, wantStatus: "PUBLISHED"},
		{name: "row out of attempts is parked, error cut to the column", id: other, wantStatus: "FAILED", wantErrLen: 1024},
		{name: "row to retry stays pending", id: second, wantStatus: "PENDING", wantErrLen: len("refused")},
		{name: "row not due is untouched", id: notDue, wantStatus: "PENDING"},
		{name: "error cut before a character, not inside it", id: multibyte, wantStatus: "FAILED", wantErrLen: 1023},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var status string
			var lastError sql.NullString
			if err := db.QueryRow("SELECT status, last_error FROM outbox WHERE id = ?", tc.id).Scan(&status, &lastError); err != nil {
				t.Fatal(err)
			}
			if status != tc.wantStatus || len(lastError.String) != tc.wantErrLen {
				t.Errorf("status %s, error of %d bytes; want %s, %d bytes", status, len(lastError.String), tc.wantStatus, tc.wantErrLen)
			}
		})
	}
	// The retried row waits for its next attempt time.
	if again, err := p.Claim(ctx, 10, now); err != nil || len(again) != 0 {
		t.Errorf("claim before the retry is due = %v, %v; want none", ids(again), err)
	}
	if due, err := p.Claim(ctx, 10, now.Add(2*time.Minute)); err != nil || !slices.Equal(ids(due), []int64{second}) {
		t.Errorf("claim after the retry is due = %v, %v; want [%d]", ids(due), err, second)
	}

	n, err := p.DeletePublished(ctx, now.Add(-24*time.Hour), 10)
	if err != nil || n != 1 {
		t.Fatalf("DeletePublished = %d, %v; want 1 (only the row published 48h ago)", n, err)
	}
	var left int
	if err := db.QueryRow("SELECT COUNT(*) FROM outbox WHERE id IN (?, ?)", oldPublished, recent).Scan(&left); err != nil || left != 1 {
		t.Errorf("%d of the two published rows left (%v), want the recent one", left, err)
	}
}
