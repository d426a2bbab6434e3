package bench

import "testing"

func TestCPUSpeedIsAPlausibleSignatureCheck(t *testing.T) {
	// An Ed25519 check takes tens of microseconds on any current core; a
	// figure outside 1 µs..10 ms means the loop measures something else.
	if us := CPUSpeed(); us < 1 || us > 10_000 {
		t.Fatalf("CPUSpeed = %v µs per check", us)
	}
}
