package auth_test

import (
	"testing"
	"time"

	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"

	"github.com/orderflow/orderflow/shared/auth"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// A caller spends its burst, is refused with the time until its next call,
// is let through once that time passed; other callers have buckets of their
// own.
func TestLimiterPerCaller(t *testing.T) {
	t.Parallel()
	clock := testinfra.NewManualClock(testNow)
	l, err := auth.NewLimiter(auth.LimiterConfig{Rate: 2, Burst: 3, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if !l.Limits(orderv1.OrderCommandService_PlaceOrder_FullMethodName) || l.Limits(orderv1.OrderCommandService_GetOrder_FullMethodName) {
		t.Fatal("by default PlaceOrder, and only PlaceOrder, is limited")
	}
	for i := range 3 {
		if ok, _ := l.Allow("u-1"); !ok {
			t.Fatalf("call %d of the burst refused", i+1)
		}
	}
	ok, wait := l.Allow("u-1")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("over the burst: Allow = %v, %s; want refused, 500ms (rate 2/s)", ok, wait)
	}
	if ok, _ := l.Allow("u-2"); !ok {
		t.Fatal("another caller was refused for u-1's calls")
	}
	// A refused call takes nothing: the wait does not grow with retries.
	if _, again := l.Allow("u-1"); again != wait {
		t.Errorf("a retry moved the wait from %s to %s", wait, again)
	}
	clock.Advance(wait - time.Millisecond)
	if ok, _ := l.Allow("u-1"); ok {
		t.Fatal("allowed before the refill")
	}
	clock.Advance(time.Millisecond)
	if ok, _ := l.Allow("u-1"); !ok {
		t.Fatal("refused after the refill interval")
	}
	if ok, _ := l.Allow("u-1"); ok {
		t.Fatal("one refill allowed two calls")
	}
}

// Memory is bounded: beyond MaxCallers the least recently seen caller is
// forgotten (and comes back to a full bucket), the others keep theirs.
func TestLimiterForgetsBeyondMaxCallers(t *testing.T) {
	t.Parallel()
	clock := testinfra.NewManualClock(testNow)
	l, err := auth.NewLimiter(auth.LimiterConfig{Rate: 1, Burst: 1, MaxCallers: 2, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if ok, _ := l.Allow(id); !ok {
			t.Fatalf("%s's first call refused", id)
		}
	}
	if ok, _ := l.Allow("b"); ok {
		t.Fatal("b's bucket was not kept")
	}
	l.Allow("c") // evicts a, the least recently seen
	if ok, _ := l.Allow("a"); !ok {
		t.Error("a was not forgotten beyond MaxCallers")
	}
}

func TestLimiterConfigIsValidated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  auth.LimiterConfig
	}{
		{name: "negative rate", cfg: auth.LimiterConfig{Rate: -1}},
		{name: "negative burst", cfg: auth.LimiterConfig{Burst: -1}},
		{name: "idle time shorter than a refill", cfg: auth.LimiterConfig{Rate: 1, Burst: 100, IdleTTL: time.Minute}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := auth.NewLimiter(tc.cfg); err == nil {
				t.Error("NewLimiter accepted the configuration")
			}
		})
	}
}
