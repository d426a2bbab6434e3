package auth_test

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/orderflow/orderflow/shared/auth"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// Every way a token can be wrong is refused with ErrUnauthenticated (and
// the jwt error that says why); a right one says who its caller is.
func TestVerifierRefusesEveryBadToken(t *testing.T) {
	t.Parallel()
	good := newEd25519Key(t, "k-good")
	es := newES256Key(t, "k-es256")
	other := newEd25519Key(t, "k-good") // same kid, another key: a forgery
	stranger := newEd25519Key(t, "k-stranger")
	v, _ := fileVerifier(t, good, es)

	with := func(change func(c *auth.Claims)) *auth.Claims {
		c := userClaims()
		change(c)
		return c
	}
	edPublic := good.signer.Public().(ed25519.PublicKey)
	tests := []struct {
		name    string
		token   string
		want    auth.Caller
		wantErr error // nil: verifies
	}{
		{name: "valid EdDSA", token: sign(t, good, userClaims()),
			want: auth.Caller{Issuer: testIssuer, Subject: "u-1", Role: auth.RoleUser, User: "u-1"}},
		{name: "valid ES256 (second key of the set)", token: sign(t, es, with(func(c *auth.Claims) {
			c.Subject, c.Role, c.User, c.Shop = "s-1", auth.RoleShop, "", "s-1"
		})), want: auth.Caller{Issuer: testIssuer, Subject: "s-1", Role: auth.RoleShop, Shop: "s-1"}},
		{name: "operator", token: sign(t, good, with(func(c *auth.Claims) { c.Subject, c.Role, c.User = "ops", auth.RoleOperator, "" })),
			want: auth.Caller{Issuer: testIssuer, Subject: "ops", Role: auth.RoleOperator}},
		{name: "expired within the leeway", token: sign(t, good, with(func(c *auth.Claims) { c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-20 * time.Second)) })),
			want: auth.Caller{Issuer: testIssuer, Subject: "u-1", Role: auth.RoleUser, User: "u-1"}},
		{name: "expired past the leeway", token: sign(t, good, with(func(c *auth.Claims) { c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-31 * time.Second)) })),
			wantErr: jwt.ErrTokenExpired},
		{name: "not valid yet past the leeway", token: sign(t, good, with(func(c *auth.Claims) { c.NotBefore = jwt.NewNumericDate(testNow.Add(time.Minute)) })),
			wantErr: jwt.ErrTokenNotValidYet},
		{name: "issued in the future", token: sign(t, good, with(func(c *auth.Claims) { c.IssuedAt = jwt.NewNumericDate(testNow.Add(time.Minute)) })),
			wantErr: jwt.ErrTokenUsedBeforeIssued},
		{name: "no expiry", token: sign(t, good, with(func(c *auth.Claims) { c.ExpiresAt = nil })), wantErr: jwt.ErrTokenRequiredClaimMissing},
		{name: "wrong audience", token: sign(t, good, with(func(c *auth.Claims) { c.Audience = jwt.ClaimStrings{"another-api"} })),
			wantErr: jwt.ErrTokenInvalidAudience},
		{name: "wrong issuer", token: sign(t, good, with(func(c *auth.Claims) { c.Issuer = "https://evil.test" })), wantErr: jwt.ErrTokenInvalidIssuer},
		{name: "signed by another key under a known kid", token: sign(t, other, userClaims()), wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "unknown kid", token: sign(t, stranger, userClaims()), wantErr: jwt.ErrTokenUnverifiable},
		{name: "no kid", token: func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, userClaims())
			s, err := tok.SignedString(good.signer)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}(), wantErr: jwt.ErrTokenUnverifiable},
		{name: "alg none", token: func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, userClaims())
			tok.Header["kid"] = good.kid
			s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}(), wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "HS256 with the public key as the secret", token: func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, userClaims())
			tok.Header["kid"] = good.kid
			s, err := tok.SignedString([]byte(edPublic))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}(), wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "tampered payload", token: func() string {
			parts := strings.Split(sign(t, good, userClaims()), ".")
			forged := strings.Split(sign(t, stranger, with(func(c *auth.Claims) { c.Role, c.User = auth.RoleOperator, "" })), ".")
			return parts[0] + "." + forged[1] + "." + parts[2]
		}(), wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "unknown role", token: sign(t, good, with(func(c *auth.Claims) { c.Role = "admin" })), wantErr: jwt.ErrTokenInvalidClaims},
		{name: "user token naming a shop too", token: sign(t, good, with(func(c *auth.Claims) { c.Shop = "s-1" })), wantErr: jwt.ErrTokenInvalidClaims},
		{name: "user token without its user", token: sign(t, good, with(func(c *auth.Claims) { c.User = "" })), wantErr: jwt.ErrTokenInvalidClaims},
		{name: "no subject", token: sign(t, good, with(func(c *auth.Claims) { c.Subject = "" })), wantErr: jwt.ErrTokenInvalidClaims},
		{name: "not a JWT", token: "not-a-token", wantErr: jwt.ErrTokenMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := v.Verify(t.Context(), tc.token)
			if tc.wantErr == nil {
				if err != nil || got != tc.want {
					t.Fatalf("Verify = %+v, %v; want %+v", got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, auth.ErrUnauthenticated) || !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify error %v; want ErrUnauthenticated and %v", err, tc.wantErr)
			}
			if got != (auth.Caller{}) {
				t.Errorf("a refused token still named a caller: %+v", got)
			}
		})
	}
}

// A rotation: the file gains the new key, and a token signed with it
// verifies at once, long before the periodic reload (an hour here); a file
// that does not parse keeps the keys in use; a key that left the file stops
// verifying at the next periodic reload, also for a token it verified
// before.
func TestVerifierFileRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := newEd25519Key(t, "k-old"), newEd25519Key(t, "k-new")
	oldToken, newToken := sign(t, oldKey, userClaims()), sign(t, newKey, userClaims())
	start := func(t *testing.T, reload time.Duration) (func(string) bool, string) {
		path := filepath.Join(t.TempDir(), "jwks.json")
		writeFile(t, path, jwks(t, oldKey))
		v, err := auth.NewVerifier(t.Context(), auth.VerifierConfig{
			JWKSFile: path, Issuer: testIssuer, Audience: testAudience, Logger: quietLogger(), Now: fixedClock,
			ReloadInterval: reload,
		})
		if err != nil {
			t.Fatal(err)
		}
		return func(token string) bool { _, err := v.Verify(t.Context(), token); return err == nil }, path
	}

	t.Run("new key verifies at once", func(t *testing.T) {
		t.Parallel()
		verifies, path := start(t, time.Hour)
		if !verifies(oldToken) || verifies(newToken) {
			t.Fatal("before the rotation only the old key's token should verify")
		}
		writeFile(t, path, jwks(t, newKey, oldKey))
		if !verifies(newToken) || !verifies(oldToken) {
			t.Fatal("with both keys in the file both tokens should verify, the new one at once")
		}
		writeFile(t, path, []byte(`{"keys": [`))
		if !verifies(oldToken) || !verifies(newToken) {
			t.Fatal("a broken file must keep the keys in use")
		}
	})
	t.Run("old key stops at the next reload", func(t *testing.T) {
		t.Parallel()
		verifies, path := start(t, 20*time.Millisecond)
		// Verified (and so cached) before the rotation: the reload must
		// forget it.
		if !verifies(oldToken) {
			t.Fatal("the old key's token does not verify before the rotation")
		}
		writeFile(t, path, jwks(t, newKey))
		testinfra.Eventually(t, 5*time.Second, func() bool { return !verifies(oldToken) }, "the old key still verifies after it left the file")
		if !verifies(newToken) {
			t.Fatal("the new key does not verify")
		}
	})
}

// A JWK Set file that would let its holder sign, or says nothing usable, is
// refused at start.
func TestVerifierRefusesUnsafeKeySets(t *testing.T) {
	t.Parallel()
	k := newEd25519Key(t, "k-1")
	withPrivate := k.public
	withPrivate.D = "c2VjcmV0"
	noKid := k.public
	noKid.KID = ""
	encrypting := k.public
	encrypting.USE = "enc"
	encode := func(v any) []byte {
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	tests := []struct {
		name string
		raw  []byte
		want string
	}{
		{name: "empty set", raw: []byte(`{"keys":[]}`), want: "no keys"},
		{name: "symmetric key", raw: []byte(`{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`), want: `of type "oct"`},
		{name: "private key material", raw: encode(map[string]any{"keys": []any{withPrivate}}), want: "private key material"},
		{name: "key without kid", raw: encode(map[string]any{"keys": []any{noKid}}), want: "no kid"},
		{name: "same kid twice", raw: jwks(t, k, k), want: "twice"},
		{name: "encryption key", raw: encode(map[string]any{"keys": []any{encrypting}}), want: "not for signatures"},
		{name: "not JSON", raw: []byte(`keys`), want: "decoding"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "jwks.json")
			writeFile(t, path, tc.raw)
			_, err := auth.NewVerifier(t.Context(), auth.VerifierConfig{JWKSFile: path, Issuer: testIssuer, Audience: testAudience, Logger: quietLogger()})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewVerifier error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// The configuration is checked at construction.
func TestVerifierConfigIsValidated(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "jwks.json")
	writeFile(t, path, jwks(t, newEd25519Key(t, "k")))
	base := auth.VerifierConfig{JWKSFile: path, Issuer: testIssuer, Audience: testAudience, Logger: quietLogger()}
	tests := []struct {
		name   string
		change func(c *auth.VerifierConfig)
		want   string
	}{
		{name: "file and URL", change: func(c *auth.VerifierConfig) { c.JWKSURL = "https://idp.test/jwks" }, want: "exactly one"},
		{name: "neither file nor URL", change: func(c *auth.VerifierConfig) { c.JWKSFile = "" }, want: "exactly one"},
		{name: "URL of another scheme", change: func(c *auth.VerifierConfig) { c.JWKSFile, c.JWKSURL = "", "file:///etc/jwks" }, want: "not an http(s) URL"},
		{name: "no issuer", change: func(c *auth.VerifierConfig) { c.Issuer = "" }, want: "issuer and the audience"},
		{name: "no audience", change: func(c *auth.VerifierConfig) { c.Audience = "" }, want: "issuer and the audience"},
		{name: "HMAC allowed", change: func(c *auth.VerifierConfig) { c.Algorithms = []string{"EdDSA", "HS256"} }, want: `"HS256" is not accepted`},
		{name: "none allowed", change: func(c *auth.VerifierConfig) { c.Algorithms = []string{"none"} }, want: `"none" is not accepted`},
		{name: "unbounded skew", change: func(c *auth.VerifierConfig) { c.Leeway = time.Hour }, want: "leeway"},
		{name: "negative cache TTL", change: func(c *auth.VerifierConfig) { c.CacheTTL = -time.Second }, want: "token cache TTL"},
		{name: "cache TTL over the bound", change: func(c *auth.VerifierConfig) { c.CacheTTL = auth.MaxCacheTTL + time.Second }, want: "token cache TTL"},
		{name: "no logger", change: func(c *auth.VerifierConfig) { c.Logger = nil }, want: "logger"},
		{name: "missing file", change: func(c *auth.VerifierConfig) { c.JWKSFile = path + ".missing" }, want: "reading the JWK Set file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := base
			tc.change(&cfg)
			if _, err := auth.NewVerifier(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewVerifier error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// Keys from a URL: fetched at start (a URL that does not answer fails the
// start), and fetched again for a kid the set did not have, so an identity
// provider's new key verifies at once.
func TestVerifierURL(t *testing.T) {
	t.Parallel()
	oldKey, newKey := newEd25519Key(t, "k-old"), newES256Key(t, "k-new")
	var served atomic.Pointer[[]byte]
	first := jwks(t, oldKey)
	served.Store(&first)
	var fetches atomic.Int32
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*served.Load())
	}))
	t.Cleanup(idp.Close)

	v, err := auth.NewVerifier(t.Context(), auth.VerifierConfig{
		JWKSURL: idp.URL, Issuer: testIssuer, Audience: testAudience, Logger: quietLogger(), Now: fixedClock,
		UnknownKIDInterval: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), sign(t, oldKey, userClaims())); err != nil {
		t.Fatalf("the served key does not verify: %v", err)
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d fetches for a known kid, want the one at start", n)
	}
	both := jwks(t, oldKey, newKey)
	served.Store(&both)
	if _, err := v.Verify(t.Context(), sign(t, newKey, userClaims())); err != nil {
		t.Fatalf("the identity provider's new key does not verify: %v", err)
	}

	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	if _, err := auth.NewVerifier(t.Context(), auth.VerifierConfig{JWKSURL: down.URL, Issuer: testIssuer, Audience: testAudience,
		Logger: quietLogger(), HTTPTimeout: time.Second}); err == nil {
		t.Fatal("a JWK Set URL that does not answer started a verifier")
	}
}
