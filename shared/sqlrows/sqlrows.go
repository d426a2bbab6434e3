// Package sqlrows is the small SQL plumbing every store shares: In builds
// the placeholders and arguments of an IN list, ScanAll reads query
// results without losing errors, and NextResultSet moves between the result
// sets of a multi-statement query the same way. database/sql
// ends a rows.Next loop the same way whether the result is complete or the
// server failed or the connection broke in the middle of it; only rows.Err
// tells the two apart, and rows.Close does not report it. A loop that checks
// Close alone returns a short result as if it were the whole one.
package sqlrows

import (
	"database/sql"
	"errors"
	"fmt"
)

// ScanAll reads every row of rows with scan and closes rows. It returns the
// rows read and nil only when the whole result was read: an error of scan,
// of the iteration (rows.Err) or of closing is returned, with the rows read
// before it, so a caller never mistakes a failed read for a short result.
func ScanAll[T any](rows *sql.Rows, scan func(*sql.Rows) (T, error)) ([]T, error) {
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return out, errors.Join(err, rows.Close())
		}
		out = append(out, v)
	}
	return out, errors.Join(rows.Err(), rows.Close())
}

// NextResultSet moves rows to the next result set of a multi-statement
// query, the one of what (for the error). It fails if the set before it
// ended in an error, or if there is no next set: rows.NextResultSet alone
// says false for both, and for a query that sent fewer statements.
func NextResultSet(rows *sql.Rows, what string) error {
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading before the %s: %w", what, err)
	}
	if !rows.NextResultSet() {
		return fmt.Errorf("reading %s: %w", what, errors.Join(rows.Err(), errors.New("no result set")))
	}
	return nil
}
