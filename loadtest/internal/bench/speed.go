package bench

import (
	"crypto/ed25519"
	"slices"
	"time"
)

// CPUSpeed times one Ed25519 signature check on one core, in microseconds
// (the median of five rounds of about 200 ms). The shared machine's cores
// are not equally fast from day to day: the same code's CPU seconds per
// order double when a check takes twice as long. CPU figures of different
// days compare through this figure, taken in the same run.
func CPUSpeed() float64 {
	seed := make([]byte, ed25519.SeedSize)
	key := ed25519.NewKeyFromSeed(seed)
	msg := []byte("orderflow cpu speed reference")
	sig := ed25519.Sign(key, msg)
	pub := key.Public().(ed25519.PublicKey)
	rounds := make([]float64, 0, 5)
	for range 5 {
		n, start := 0, time.Now()
		for time.Since(start) < 200*time.Millisecond {
			for range 50 {
				if !ed25519.Verify(pub, msg, sig) {
					panic("ed25519 reference signature does not verify")
				}
			}
			n += 50
		}
		rounds = append(rounds, float64(time.Since(start).Microseconds())/float64(n))
	}
	return median(rounds)
}

// median of xs (xs is reordered).
func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}
