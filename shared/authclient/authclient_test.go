package authclient_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/orderflow/orderflow/shared/auth"
	"github.com/orderflow/orderflow/shared/authclient"
)

// keys generates a signing key and returns the key file and a verifier of
// the local issuer and audience by now.
func keys(t *testing.T, now func() time.Time) (string, *auth.Verifier) {
	t.Helper()
	dir := t.TempDir()
	if _, err := auth.GenerateKeys(dir, 1); err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(t.Context(), auth.VerifierConfig{JWKSFile: filepath.Join(dir, auth.PublicKeysFile),
		Issuer: auth.LocalIssuer, Audience: auth.DefaultAudience, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, auth.SigningKeyFile), v
}

// Every token a Minter signs verifies with the key's public set and names
// the caller it was minted for.
func TestMinterTokensVerify(t *testing.T) {
	t.Parallel()
	keyFile, v := keys(t, time.Now)
	m, err := authclient.NewMinter(authclient.MinterConfig{KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mint func() (string, error)
		want auth.Caller
	}{
		{"user", func() (string, error) { return m.User("u-1") }, auth.Caller{Role: auth.RoleUser, User: "u-1", Subject: "u-1"}},
		{"shop", func() (string, error) { return m.Shop("s-1") }, auth.Caller{Role: auth.RoleShop, Shop: "s-1", Subject: "s-1"}},
		{"operator", m.Operator, auth.Caller{Role: auth.RoleOperator, Subject: "operator"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			token, err := tc.mint()
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.Verify(t.Context(), token)
			if err != nil {
				t.Fatalf("the minted token does not verify: %v", err)
			}
			tc.want.Issuer = auth.LocalIssuer
			if got != tc.want {
				t.Errorf("caller %+v, want %+v", got, tc.want)
			}
		})
	}
}

// A caller's token is signed once and reused until half its lifetime has
// passed; then a new one replaces it, before the old one expires.
func TestMinterCachesUntilHalfLife(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	keyFile, v := keys(t, clock)
	m, err := authclient.NewMinter(authclient.MinterConfig{KeyFile: keyFile, TTL: time.Hour, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := m.User("u-1")
	other, _ := m.User("u-2")
	if again, _ := m.User("u-1"); again != first {
		t.Error("a second token for the same user was signed before half its lifetime")
	}
	if other == first {
		t.Error("two users got the same token")
	}
	advance(31 * time.Minute)
	renewed, _ := m.User("u-1")
	if renewed == first {
		t.Error("the token was not renewed after half its lifetime")
	}
	advance(31 * time.Minute)
	if _, err := v.Verify(t.Context(), first); err == nil {
		t.Error("the first token still verifies after its TTL; the test's clock is not the verifier's")
	}
	if _, err := v.Verify(t.Context(), renewed); err != nil {
		t.Errorf("the renewed token does not verify while the first has expired: %v", err)
	}
}

// A bad configuration is refused at construction, not at the first call.
func TestNewMinterRefuses(t *testing.T) {
	t.Parallel()
	keyFile, _ := keys(t, time.Now)
	for _, tc := range []struct {
		name string
		cfg  authclient.MinterConfig
	}{
		{"no key file", authclient.MinterConfig{}},
		{"missing key file", authclient.MinterConfig{KeyFile: filepath.Join(t.TempDir(), "none.jwk")}},
		{"public set instead of the key", authclient.MinterConfig{KeyFile: filepath.Join(filepath.Dir(keyFile), auth.PublicKeysFile)}},
		{"TTL above the maximum", authclient.MinterConfig{KeyFile: keyFile, TTL: auth.MaxTTL + time.Second}},
		{"negative TTL", authclient.MinterConfig{KeyFile: keyFile, TTL: -time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := authclient.NewMinter(tc.cfg); err == nil {
				t.Error("NewMinter accepted it")
			}
		})
	}
}

// Bearer and OutgoingContext put the token in the authorization metadata;
// SetBearer and Transport in the Authorization header, and Transport leaves
// a request's own header alone.
func TestBearerCarriers(t *testing.T) {
	t.Parallel()
	md, err := authclient.Bearer("tok").GetRequestMetadata(t.Context())
	if err != nil || md["authorization"] != "Bearer tok" {
		t.Errorf("Bearer metadata %v, %v", md, err)
	}
	if md, _ := authclient.Bearer("").GetRequestMetadata(t.Context()); len(md) != 0 {
		t.Errorf("an empty Bearer sends %v", md)
	}
	if authclient.Bearer("tok").RequireTransportSecurity() {
		t.Error("Bearer requires transport security; the local system is plain text")
	}
	out, _ := metadata.FromOutgoingContext(authclient.OutgoingContext(context.Background(), "tok"))
	if got := out.Get("authorization"); len(got) != 1 || got[0] != "Bearer tok" {
		t.Errorf("outgoing metadata %v", got)
	}
	if _, ok := metadata.FromOutgoingContext(authclient.OutgoingContext(context.Background(), "")); ok {
		t.Error("an empty token added metadata")
	}

	seen := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen <- r.Header.Get("Authorization") }))
	t.Cleanup(srv.Close)
	c := &http.Client{Transport: &authclient.Transport{Token: "tok"}}
	for _, tc := range []struct{ name, own, want string }{
		{"added", "", "Bearer tok"},
		{"the request's own kept", "Bearer mine", "Bearer mine"},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
		if tc.own != "" {
			req.Header.Set("Authorization", tc.own)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := <-seen; got != tc.want {
			t.Errorf("%s: Authorization %q, want %q", tc.name, got, tc.want)
		}
		if tc.own == "" && req.Header.Get("Authorization") != "" {
			t.Errorf("%s: Transport changed the caller's request", tc.name)
		}
	}
}
