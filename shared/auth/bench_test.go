package auth_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/orderflow/orderflow/shared/auth"
)

// What one call's full token check costs (the Ed25519 signature, the
// claims and the key lookup by kid): the first call with a token pays it,
// and every call with the cache off.
func BenchmarkVerify(b *testing.B) {
	key := newEd25519Key(b, "k-1")
	v, _ := fileVerifierWith(b, func(c *auth.VerifierConfig) { c.CacheSize = -1 }, key)
	token := sign(b, key, userClaims())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(b.Context(), token); err != nil {
			b.Fatal(err)
		}
	}
}

// What a call with a token verified before costs: the cache lookup, which
// every later call with the token pays instead of BenchmarkVerify's check.
func BenchmarkVerifyCached(b *testing.B) {
	key := newEd25519Key(b, "k-1")
	v, _ := fileVerifier(b, key)
	token := sign(b, key, userClaims())
	if _, err := v.Verify(b.Context(), token); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(b.Context(), token); err != nil {
			b.Fatal(err)
		}
	}
}

// What one PlaceOrder's bucket costs, spread over 10,000 callers (the LRU
// lookup and renewal, and the bucket itself).
func BenchmarkLimiterAllow(b *testing.B) {
	l, err := auth.NewLimiter(auth.LimiterConfig{Rate: 1e6, Burst: 1e6, Now: time.Now})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, 10_000)
	for i := range ids {
		ids[i] = fmt.Sprintf("u-%d", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if ok, _ := l.Allow(ids[i%len(ids)]); !ok {
			b.Fatal("refused under a limit no benchmark reaches")
		}
		i++
	}
}
