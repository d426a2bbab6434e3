package retention_test

import (
	"testing"
	"time"

	"github.com/orderflow/orderflow/shared/lifecycle/retention"
)

// Every accepted change window ends before every accepted retention does.
func TestBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		d             time.Duration
		wantRetention bool // accepted as a retention
		wantWindow    bool // accepted as a change window
	}{
		{name: "zero", d: 0},
		{name: "negative", d: -time.Hour},
		{name: "one day", d: 24 * time.Hour, wantWindow: true},
		{name: "one microsecond under 30 days", d: retention.Min - time.Microsecond, wantWindow: true},
		{name: "exactly 30 days", d: retention.Min, wantRetention: true, wantWindow: true},
		{name: "31 days", d: retention.Min + 24*time.Hour, wantRetention: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := retention.ValidateRetention(tc.d); (err == nil) != tc.wantRetention {
				t.Errorf("ValidateRetention(%s) = %v, want accepted %v", tc.d, err, tc.wantRetention)
			}
			if err := retention.ValidateChangeWindow(tc.d); (err == nil) != tc.wantWindow {
				t.Errorf("ValidateChangeWindow(%s) = %v, want accepted %v", tc.d, err, tc.wantWindow)
			}
		})
	}
}
