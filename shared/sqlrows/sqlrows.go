// Package sqlrows is the small SQL plumbing every store shares: In builds
// the placeholders and arguments of an IN list, and ScanAll reads query
// results without losing errors. database/sql
// ends a rows.Next loop the same way whether the result is complete or the
// server failed or the connection broke in the middle of it; only rows.Err
// tells the two apart, and rows.Close does not report it. A loop that checks
// Close alone returns a short result as if it were the whole one.
package sqlrows

import (
	"database/sql"
	"errors"
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
