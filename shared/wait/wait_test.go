package wait_test

import (
	"context"
	"testing"
	"time"

	"github.com/orderflow/orderflow/shared/wait"
)

func TestSleep(t *testing.T) {
	t.Parallel()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want bool
		// atLeast and atMost bound how long Sleep took.
		atLeast, atMost time.Duration
	}{
		{name: "full wait", ctx: context.Background(), d: 20 * time.Millisecond, want: true, atLeast: 20 * time.Millisecond, atMost: 5 * time.Second},
		{name: "zero returns at once", ctx: context.Background(), d: 0, want: true, atMost: time.Second},
		{name: "negative returns at once", ctx: context.Background(), d: -time.Second, want: true, atMost: time.Second},
		{name: "ended context cuts a long wait", ctx: ended, d: time.Hour, want: false, atMost: 5 * time.Second},
		{name: "ended context with zero", ctx: ended, d: 0, want: false, atMost: time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			got := wait.Sleep(tc.ctx, tc.d)
			took := time.Since(start)
			if got != tc.want {
				t.Errorf("Sleep(%s) = %v, want %v", tc.d, got, tc.want)
			}
			if took < tc.atLeast || took > tc.atMost {
				t.Errorf("Sleep(%s) took %s, want between %s and %s", tc.d, took, tc.atLeast, tc.atMost)
			}
		})
	}
}

func TestSleepEndsWhenContextIsCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() { done <- wait.Sleep(ctx, time.Hour) }()
	cancel()
	select {
	case got := <-done:
		if got {
			t.Error("Sleep reported a full wait after its context was cancelled")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Sleep did not return within 5s of its context being cancelled")
	}
}
