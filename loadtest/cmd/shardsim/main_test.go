package main

import (
	"math"
	"testing"
)

// The simulation runs the project's routing: before the new shard two ways
// even, right after it the old shards still hold the old orders, and one
// retention later the live rows are even three ways.
func TestBalanceReturnsOneRetentionAfterAddingAShard(t *testing.T) {
	t.Parallel()
	o := options{days: 40, addOn: 10, retention: 15, perDay: 3000}
	shares, err := simulate(o)
	if err != nil {
		t.Fatal(err)
	}
	at := func(shard string, day int) float64 { return shares[shard][day-1].Y }
	tests := []struct {
		name      string
		shard     string
		day       int
		want, tol float64
	}{
		{"two shards before the add", "shard-0", 10, 50, 2},
		{"the new shard is empty before", "shard-2", 10, 0, 0},
		{"old orders stay on the old shards", "shard-2", 12, 100.0 / 3 * 2 / 15, 2},
		{"even three ways one retention later", "shard-0", 26, 100.0 / 3, 2},
		{"even three ways one retention later", "shard-2", 26, 100.0 / 3, 2},
		{"and it stays even", "shard-1", 40, 100.0 / 3, 2},
	}
	for _, tc := range tests {
		if got := at(tc.shard, tc.day); math.Abs(got-tc.want) > tc.tol {
			t.Errorf("%s: %s on day %d holds %.1f %%, want %.1f ± %.1f", tc.name, tc.shard, tc.day, got, tc.want, tc.tol)
		}
	}
}
