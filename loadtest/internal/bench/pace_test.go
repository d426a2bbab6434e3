package bench

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestPaced(t *testing.T) {
	tests := []struct {
		name      string
		perSecond int
		duration  time.Duration
		failEvery int64
		wantCalls int64
	}{
		{name: "every call on schedule", perSecond: 400, duration: 250 * time.Millisecond, wantCalls: 100},
		{name: "failures counted", perSecond: 200, duration: 200 * time.Millisecond, failEvery: 4, wantCalls: 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seq, calls atomic.Int64
			start := time.Now()
			failed := Paced(context.Background(), tt.perSecond, tt.duration, &seq, func(_ context.Context, i int64) error {
				calls.Add(1)
				if tt.failEvery > 0 && i%tt.failEvery == 0 {
					return errors.New("planned")
				}
				return nil
			})
			if got := calls.Load(); got != tt.wantCalls {
				t.Fatalf("calls = %d, want %d", got, tt.wantCalls)
			}
			wantFailed := 0
			if tt.failEvery > 0 {
				wantFailed = int(tt.wantCalls / tt.failEvery)
			}
			if failed != wantFailed {
				t.Fatalf("failed = %d, want %d", failed, wantFailed)
			}
			// The last call is due one interval before the end; finishing
			// earlier would mean calls were started ahead of schedule.
			if elapsed, floor := time.Since(start), tt.duration-2*time.Second/time.Duration(tt.perSecond); elapsed < floor {
				t.Fatalf("finished after %s, before the schedule's %s", elapsed, floor)
			}
		})
	}
}

// A call that blocks must not hold back the calls after it: the loop is open.
func TestPacedIsOpenLoop(t *testing.T) {
	const want = 50
	var seq, started atomic.Int64
	release := make(chan struct{})
	Paced(context.Background(), 500, 100*time.Millisecond, &seq, func(context.Context, int64) error {
		// Every call waits for the last one to start: a closed loop would
		// never start it, and Paced would not return.
		if started.Add(1) == want {
			close(release)
		}
		<-release
		return nil
	})
	if got := started.Load(); got != want {
		t.Fatalf("started %d calls while the first ones blocked, want %d", got, want)
	}
}
