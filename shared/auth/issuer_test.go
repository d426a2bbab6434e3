package auth_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/orderflow/orderflow/shared/auth"
)

func newIssuer(t *testing.T, dir string) *auth.Issuer {
	t.Helper()
	iss, err := auth.NewIssuer(auth.IssuerConfig{KeyFile: filepath.Join(dir, auth.SigningKeyFile), Issuer: testIssuer, Audience: testAudience, Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func readSet(t *testing.T, dir string) jwkset.JWKSMarshal {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, auth.PublicKeysFile))
	if err != nil {
		t.Fatal(err)
	}
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	return set
}

// Generated keys: the issuer's tokens verify with the generated set, for
// each role; a second generation keeps the first public key (its tokens
// still verify) and puts the new one first; keep bounds the set.
func TestGenerateKeysIssueAndVerify(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "auth")
	first, err := auth.GenerateKeys(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(filepath.Join(dir, auth.SigningKeyFile)); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("signing key file %v, %v: want mode 0600", info, err)
	}
	iss := newIssuer(t, dir)
	if iss.KeyID() != first {
		t.Fatalf("issuer kid %q, want the generated %q", iss.KeyID(), first)
	}
	v, err := auth.NewVerifier(t.Context(), auth.VerifierConfig{JWKSFile: filepath.Join(dir, auth.PublicKeysFile),
		Issuer: testIssuer, Audience: testAudience, Logger: quietLogger(), Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  auth.TokenRequest
		want auth.Caller
	}{
		{name: "user", req: auth.TokenRequest{Role: auth.RoleUser, User: "u-1", TTL: time.Hour},
			want: auth.Caller{Issuer: testIssuer, Subject: "u-1", Role: auth.RoleUser, User: "u-1"}},
		{name: "shop", req: auth.TokenRequest{Role: auth.RoleShop, Shop: "s-1", TTL: time.Hour},
			want: auth.Caller{Issuer: testIssuer, Subject: "s-1", Role: auth.RoleShop, Shop: "s-1"}},
		{name: "operator with a subject", req: auth.TokenRequest{Role: auth.RoleOperator, Subject: "alice", TTL: time.Minute},
			want: auth.Caller{Issuer: testIssuer, Subject: "alice", Role: auth.RoleOperator}},
	}
	var firstToken string
	for _, tc := range tests {
		token, err := iss.Issue(tc.req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		firstToken = token
		got, err := v.Verify(t.Context(), token)
		if err != nil || got != tc.want {
			t.Errorf("%s: Verify = %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}

	second, err := auth.GenerateKeys(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	if set := readSet(t, dir); len(set.Keys) != 2 || set.Keys[0].KID != second || set.Keys[1].KID != first || set.Keys[0].D != "" {
		t.Fatalf("set after a second generation: %+v; want public keys %s then %s", set.Keys, second, first)
	}
	if _, err := v.Verify(t.Context(), firstToken); err != nil {
		t.Errorf("a token of the previous key stopped verifying: %v", err)
	}
	newToken, err := newIssuer(t, dir).Issue(auth.TokenRequest{Role: auth.RoleUser, User: "u-1", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), newToken); err != nil {
		t.Errorf("a token of the new key does not verify: %v", err)
	}

	third, err := auth.GenerateKeys(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	if set := readSet(t, dir); len(set.Keys) != 1 || set.Keys[0].KID != third {
		t.Errorf("keep 1 left %d keys", len(set.Keys))
	}
}

// The issuer refuses tokens the verifier would refuse, and lifetimes that
// are not bounded.
func TestIssueRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := auth.GenerateKeys(dir, 2); err != nil {
		t.Fatal(err)
	}
	iss := newIssuer(t, dir)
	tests := []struct {
		name string
		req  auth.TokenRequest
	}{
		{name: "no lifetime", req: auth.TokenRequest{Role: auth.RoleUser, User: "u-1"}},
		{name: "lifetime past MaxTTL", req: auth.TokenRequest{Role: auth.RoleUser, User: "u-1", TTL: auth.MaxTTL + time.Second}},
		{name: "user without user", req: auth.TokenRequest{Role: auth.RoleUser, TTL: time.Hour}},
		{name: "shop naming a user", req: auth.TokenRequest{Role: auth.RoleShop, Shop: "s-1", User: "u-1", TTL: time.Hour}},
		{name: "unknown role", req: auth.TokenRequest{Role: "root", Subject: "x", TTL: time.Hour}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if token, err := iss.Issue(tc.req); err == nil {
				t.Errorf("issued %s", token)
			}
		})
	}
}

// An issued token says exactly what the package documents: the kid and
// EdDSA in its header, iat = nbf = now, exp = now + ttl, a jti.
func TestIssuedTokenClaims(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := auth.GenerateKeys(dir, 2); err != nil {
		t.Fatal(err)
	}
	iss := newIssuer(t, dir)
	token, err := iss.Issue(auth.TokenRequest{Role: auth.RoleShop, Shop: "s-1", TTL: 90 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	parsed, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	claims = parsed.Claims.(jwt.MapClaims)
	if parsed.Header["alg"] != "EdDSA" || parsed.Header["kid"] != iss.KeyID() {
		t.Errorf("header %v, want alg EdDSA and kid %s", parsed.Header, iss.KeyID())
	}
	want := map[string]any{"iss": testIssuer, "sub": "s-1", "orderflow_role": "shop", "orderflow_shop": "s-1",
		"iat": float64(testNow.Unix()), "nbf": float64(testNow.Unix()), "exp": float64(testNow.Add(90 * time.Minute).Unix())}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	if aud, _ := claims["aud"].([]any); len(aud) != 1 || aud[0] != testAudience {
		t.Errorf("aud %v, want [%s]", claims["aud"], testAudience)
	}
	if _, ok := claims["orderflow_user"]; ok {
		t.Error("a shop token carries orderflow_user")
	}
	if jti, _ := claims["jti"].(string); jti == "" {
		t.Error("no jti")
	}
}

// A signing key file that is not a private Ed25519 JWK is refused.
func TestNewIssuerRefusesBadKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := auth.GenerateKeys(dir, 2); err != nil {
		t.Fatal(err)
	}
	public, err := json.Marshal(readSet(t, dir).Keys[0])
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "public.jwk"), public)
	tests := []struct {
		name string
		file string
	}{
		{name: "the public set", file: filepath.Join(dir, auth.PublicKeysFile)},
		{name: "a public key", file: filepath.Join(dir, "public.jwk")},
		{name: "missing", file: filepath.Join(dir, "nope.jwk")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := auth.NewIssuer(auth.IssuerConfig{KeyFile: tc.file, Issuer: testIssuer, Audience: testAudience})
			if err == nil {
				t.Error("NewIssuer accepted it")
			}
		})
	}
}
