package auth_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/orderflow/orderflow/shared/auth"
)

// A token verified once is accepted again without a key lookup (the
// signature check) until the earlier of its exp and the cache TTL, or until
// the JWK Set file changes; refusals are checked in full every time, and a
// token that differs by one byte is another token. Each step says how many
// full checks the verifier has made so far.
func TestVerifierCache(t *testing.T) {
	t.Parallel()
	oldKey, newKey := newEd25519Key(t, "k-old"), newEd25519Key(t, "k-new")
	u1 := auth.Caller{Issuer: testIssuer, Subject: "u-1", Role: auth.RoleUser, User: "u-1"}
	u2 := auth.Caller{Issuer: testIssuer, Subject: "u-2", Role: auth.RoleUser, User: "u-2"}
	claims := func(user string, exp time.Duration) *auth.Claims {
		c := userClaims()
		c.Subject, c.User, c.ExpiresAt = user, user, jwt.NewNumericDate(testNow.Add(exp))
		return c
	}
	old := sign(t, oldKey, claims("u-1", time.Hour))
	tokens := map[string]string{
		"old":          old,
		"old for u-2":  sign(t, oldKey, claims("u-2", time.Hour)),
		"old, exp 10s": sign(t, oldKey, claims("u-1", 10*time.Second)),
		"new":          sign(t, newKey, claims("u-1", time.Hour)),
		"old, another signature": func() string {
			// A character inside the signature (not its last, whose
			// padding bits strict decoding refuses by itself).
			b := []byte(old)
			i := len(b) - 10
			b[i] = map[bool]byte{true: 'B', false: 'A'}[b[i] == 'A']
			return string(b)
		}(),
	}
	type step struct {
		at          time.Duration // the clock: testNow + at
		rewrite     []key         // when set, the JWK Set file becomes these keys first
		token       string        // a name in tokens
		want        auth.Caller   // when wantErr is nil
		wantErr     error
		wantLookups int64
	}
	tests := []struct {
		name   string
		config func(c *auth.VerifierConfig)
		steps  []step
	}{
		{name: "accepted from the cache", steps: []step{
			{token: "old", want: u1, wantLookups: 1},
			{token: "old", want: u1, wantLookups: 1},
			{at: 30 * time.Second, token: "old", want: u1, wantLookups: 1},
			{at: 30 * time.Second, token: "old for u-2", want: u2, wantLookups: 2},
			{at: 30 * time.Second, token: "old for u-2", want: u2, wantLookups: 2},
		}},
		{name: "the TTL bounds an entry", config: func(c *auth.VerifierConfig) { c.CacheTTL = time.Minute }, steps: []step{
			{token: "old", want: u1, wantLookups: 1},
			{at: 59 * time.Second, token: "old", want: u1, wantLookups: 1},
			{at: 60 * time.Second, token: "old", want: u1, wantLookups: 2},
			{at: 119 * time.Second, token: "old", want: u1, wantLookups: 2},
			{at: 120 * time.Second, token: "old", want: u1, wantLookups: 3},
		}},
		{name: "exp bounds an entry, the leeway applies to the full check only", steps: []step{
			{token: "old, exp 10s", want: u1, wantLookups: 1},
			{at: 9 * time.Second, token: "old, exp 10s", want: u1, wantLookups: 1},
			{at: 10 * time.Second, token: "old, exp 10s", want: u1, wantLookups: 2},
			{at: 20 * time.Second, token: "old, exp 10s", want: u1, wantLookups: 3},
			{at: 41 * time.Second, token: "old, exp 10s", wantErr: jwt.ErrTokenExpired, wantLookups: 4},
		}},
		{name: "a key-set change forgets the tokens of a removed key", steps: []step{
			{token: "old", want: u1, wantLookups: 1},
			// The unknown kid makes the verifier read the changed file.
			{rewrite: []key{newKey}, token: "new", want: u1, wantLookups: 2},
			{token: "old", wantErr: jwt.ErrTokenUnverifiable, wantLookups: 3},
		}},
		{name: "a key-set change checks the kept keys' tokens again", steps: []step{
			{token: "old", want: u1, wantLookups: 1},
			{rewrite: []key{newKey, oldKey}, token: "new", want: u1, wantLookups: 2},
			{token: "old", want: u1, wantLookups: 3},
			{token: "old", want: u1, wantLookups: 3},
		}},
		{name: "refusals are not remembered", steps: []step{
			{token: "new", wantErr: jwt.ErrTokenUnverifiable, wantLookups: 1},
			{token: "new", wantErr: jwt.ErrTokenUnverifiable, wantLookups: 2},
			{at: 41 * time.Second, token: "old, exp 10s", wantErr: jwt.ErrTokenExpired, wantLookups: 3},
			{at: 41 * time.Second, token: "old, exp 10s", wantErr: jwt.ErrTokenExpired, wantLookups: 4},
			// Its key arrives: the token refused before verifies. The
			// reload happened during that check, so its entry belongs to
			// the key set before and the next call checks again.
			{at: 41 * time.Second, rewrite: []key{oldKey, newKey}, token: "new", want: u1, wantLookups: 5},
			{at: 41 * time.Second, token: "new", want: u1, wantLookups: 6},
			{at: 41 * time.Second, token: "new", want: u1, wantLookups: 6},
		}},
		{name: "another signature is another token", steps: []step{
			{token: "old", want: u1, wantLookups: 1},
			{token: "old, another signature", wantErr: jwt.ErrTokenSignatureInvalid, wantLookups: 2},
			{token: "old", want: u1, wantLookups: 2},
		}},
		{name: "the size bounds the entries", config: func(c *auth.VerifierConfig) { c.CacheSize = 1 }, steps: []step{
			{token: "old", want: u1, wantLookups: 1},
			{token: "old", want: u1, wantLookups: 1},
			{token: "old for u-2", want: u2, wantLookups: 2},
			{token: "old", want: u1, wantLookups: 3},
		}},
		{name: "disabled", config: func(c *auth.VerifierConfig) { c.CacheSize = -1 }, steps: []step{
			{token: "old", want: u1, wantLookups: 1},
			{token: "old", want: u1, wantLookups: 2},
			{at: 41 * time.Second, token: "old, exp 10s", wantErr: jwt.ErrTokenExpired, wantLookups: 3},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			v, path := fileVerifierWith(t, func(c *auth.VerifierConfig) {
				c.Now = clk.Now
				c.ReloadInterval = time.Hour // reloads only for an unknown kid
				if tc.config != nil {
					tc.config(c)
				}
			}, oldKey)
			lookups := auth.CountKeyLookups(v)
			for i, s := range tc.steps {
				clk.Set(s.at)
				if s.rewrite != nil {
					writeFile(t, path, jwks(t, s.rewrite...))
				}
				got, err := v.Verify(t.Context(), tokens[s.token])
				switch {
				case s.wantErr == nil && (err != nil || got != s.want):
					t.Fatalf("step %d (%s at +%s): Verify = %+v, %v; want %+v", i, s.token, s.at, got, err, s.want)
				case s.wantErr != nil && (!errors.Is(err, auth.ErrUnauthenticated) || !errors.Is(err, s.wantErr) || got != auth.Caller{}):
					t.Fatalf("step %d (%s at +%s): Verify = %+v, %v; want ErrUnauthenticated and %v", i, s.token, s.at, got, err, s.wantErr)
				}
				if n := lookups(); n != s.wantLookups {
					t.Fatalf("step %d (%s at +%s): %d full checks so far, want %d", i, s.token, s.at, n, s.wantLookups)
				}
			}
		})
	}
}

// A JWK Set file that is rewritten with the same keys (a redeployment) is
// no change: the cache keeps its tokens.
func TestVerifierCacheSurvivesAnUnchangedReload(t *testing.T) {
	t.Parallel()
	k := newEd25519Key(t, "k-1")
	v, path := fileVerifierWith(t, func(c *auth.VerifierConfig) { c.ReloadInterval = time.Hour }, k)
	lookups := auth.CountKeyLookups(v)
	token := sign(t, k, userClaims())
	if _, err := v.Verify(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, raw)
	// An unknown kid makes the verifier read the file, which it finds
	// unchanged.
	if _, err := v.Verify(t.Context(), sign(t, newEd25519Key(t, "k-2"), userClaims())); !errors.Is(err, jwt.ErrTokenUnverifiable) {
		t.Fatalf("a stranger's token: %v, want ErrTokenUnverifiable", err)
	}
	if _, err := v.Verify(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	if n := lookups(); n != 2 {
		t.Errorf("%d full checks, want 2 (the first token's, the stranger's)", n)
	}
}
