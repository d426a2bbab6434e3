package sqlrows_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/orderflow/orderflow/shared/sqlrows"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// The server fails a query after it has streamed part of the result: the
// caller gets the error (with the rows read before it), never a short result
// that looks complete.
func TestScanAll(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 1)
	db := testinfra.DB(t, topo.Shards[0].DSN)
	ctx := context.Background()
	for _, q := range []string{
		"CREATE TABLE numbers (n INT PRIMARY KEY)",
		// 20,000 rows, so the server has sent pages of the result before it
		// reaches the bad row.
		"CREATE TABLE digits (d INT)",
		"INSERT INTO digits VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)",
		`INSERT INTO numbers SELECT 1 + a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * (f.d % 2)
			FROM digits a, digits b, digits c, digits e, digits f WHERE f.d < 2`,
		// Two rows for 15,000: the scalar subquery fails on that row only.
		"CREATE TABLE twice (n INT)",
		"INSERT INTO twice VALUES (15000), (15000)",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	scanInt := func(rows *sql.Rows) (int, error) {
		var n int
		err := rows.Scan(&n)
		return n, err
	}
	errScan := errors.New("scan refused")
	tests := []struct {
		name     string
		query    string
		scan     func(*sql.Rows) (int, error)
		wantRows int
		// wantErr is the error the caller must see; wantMySQL the server's
		// error number instead; both zero when the read must succeed.
		wantErr   error
		wantMySQL uint16
	}{
		{name: "whole result", query: "SELECT n FROM numbers ORDER BY n", scan: scanInt, wantRows: 20000},
		{name: "empty result", query: "SELECT n FROM numbers WHERE n < 0", scan: scanInt},
		{name: "server error after part of the result",
			query: "SELECT n + COALESCE((SELECT t.n FROM twice t WHERE t.n = numbers.n), 0) FROM numbers ORDER BY n",
			scan:  scanInt, wantMySQL: 1242}, // ER_SUBQUERY_NO_1_ROW
		{name: "scan error", query: "SELECT n FROM numbers ORDER BY n", wantErr: errScan,
			scan: func(rows *sql.Rows) (int, error) {
				n, err := scanInt(rows)
				if err == nil && n == 10 {
					err = errScan
				}
				return n, err
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rows, err := db.QueryContext(ctx, tc.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := sqlrows.ScanAll(rows, tc.scan)
			switch {
			case tc.wantMySQL != 0:
				var me *mysql.MySQLError
				if !errors.As(err, &me) || me.Number != tc.wantMySQL {
					t.Fatalf("ScanAll() = %d rows, %v; want MySQL error %d", len(got), err, tc.wantMySQL)
				}
				if len(got) == 0 || len(got) >= 15000 {
					t.Errorf("ScanAll() read %d rows before the error, want some but fewer than 15000 (the error must come mid-stream)", len(got))
				}
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) || len(got) != 9 {
					t.Fatalf("ScanAll() = %d rows, %v; want the 9 rows before it and %v", len(got), err, tc.wantErr)
				}
			default:
				if err != nil || len(got) != tc.wantRows {
					t.Fatalf("ScanAll() = %d rows, %v; want %d rows", len(got), err, tc.wantRows)
				}
			}
		})
	}
}
