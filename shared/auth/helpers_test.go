package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/orderflow/orderflow/shared/auth"
)

const (
	testIssuer   = "https://auth.orderflow.test"
	testAudience = "orderflow-api"
)

// testNow is the clock of every token and verifier here: fixed, so expiry
// and skew are exact.
var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return testNow }

// key is a signing key with its kid and the public JWK that verifies it.
type key struct {
	kid    string
	method jwt.SigningMethod
	signer crypto.Signer
	public jwkset.JWKMarshal
}

func newEd25519Key(t testing.TB, kid string) key {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key{kid: kid, method: jwt.SigningMethodEdDSA, signer: priv, public: publicJWK(t, pub, kid, jwkset.AlgEdDSA)}
}

func newES256Key(t testing.TB, kid string) key {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key{kid: kid, method: jwt.SigningMethodES256, signer: priv, public: publicJWK(t, &priv.PublicKey, kid, jwkset.AlgES256)}
}

func publicJWK(t testing.TB, pub any, kid string, alg jwkset.ALG) jwkset.JWKMarshal {
	t.Helper()
	j, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: alg, USE: jwkset.UseSig}})
	if err != nil {
		t.Fatal(err)
	}
	return j.Marshal()
}

// jwks encodes the public keys as a JWK Set.
func jwks(t testing.TB, keys ...key) []byte {
	t.Helper()
	set := jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{}}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.public)
	}
	raw, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// writeFile replaces path's content by a rename, as a deployment would.
func writeFile(t testing.TB, path string, raw []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// userClaims are valid claims for user u-1 at testNow.
func userClaims() *auth.Claims {
	return &auth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: testIssuer, Subject: "u-1", Audience: jwt.ClaimStrings{testAudience},
			IssuedAt: jwt.NewNumericDate(testNow.Add(-time.Minute)), NotBefore: jwt.NewNumericDate(testNow.Add(-time.Minute)),
			ExpiresAt: jwt.NewNumericDate(testNow.Add(time.Hour)),
		},
		Role: auth.RoleUser, User: "u-1",
	}
}

// sign signs claims with k, kid in the header.
func sign(t testing.TB, k key, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(k.method, claims)
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(k.signer)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fileVerifier is a verifier over a JWK Set file holding keys.
func fileVerifier(t testing.TB, keys ...key) (*auth.Verifier, string) {
	t.Helper()
	return fileVerifierWith(t, func(*auth.VerifierConfig) {}, keys...)
}

// fileVerifierWith is fileVerifier with its configuration changed by
// change.
func fileVerifierWith(t testing.TB, change func(c *auth.VerifierConfig), keys ...key) (*auth.Verifier, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	writeFile(t, path, jwks(t, keys...))
	cfg := auth.VerifierConfig{JWKSFile: path, Issuer: testIssuer, Audience: testAudience, Logger: quietLogger(), Now: fixedClock}
	change(&cfg)
	v, err := auth.NewVerifier(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v, path
}

// clock is a settable clock, starting at testNow.
type clock struct{ now atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.now.Store(testNow.UnixNano())
	return c
}

func (c *clock) Now() time.Time { return time.Unix(0, c.now.Load()).UTC() }

// Set moves the clock to testNow + d.
func (c *clock) Set(d time.Duration) { c.now.Store(testNow.Add(d).UnixNano()) }
