package sqlrows_test

import (
	"slices"
	"testing"

	"github.com/orderflow/orderflow/shared/sqlrows"
)

func TestIn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		values           []int64
		wantPlaceholders string
	}{
		{name: "one value", values: []int64{7}, wantPlaceholders: "?"},
		{name: "several values keep their order", values: []int64{3, 1, 2}, wantPlaceholders: "?,?,?"},
		{name: "empty list", values: nil, wantPlaceholders: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			placeholders, args := sqlrows.In(tc.values)
			if placeholders != tc.wantPlaceholders {
				t.Errorf("placeholders = %q, want %q", placeholders, tc.wantPlaceholders)
			}
			want := make([]any, len(tc.values))
			for i, v := range tc.values {
				want[i] = v
			}
			if !slices.Equal(args, want) {
				t.Errorf("args = %v, want %v", args, want)
			}
		})
	}
}
