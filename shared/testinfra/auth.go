package testinfra

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/orderflow/orderflow/shared/auth"
	"github.com/orderflow/orderflow/shared/authclient"
)

// HarnessPlaceOrderRate and HarnessPlaceOrderBurst are the PlaceOrder limits
// Auth gives the services a test starts: far above what a test places, so a
// harness that places hundreds of orders with one token (an operator acting
// for many users) measures what it is about, not the limiter. Tests of the
// limit set their own.
const (
	HarnessPlaceOrderRate  = 1_000_000
	HarnessPlaceOrderBurst = 1_000_000
)

// Auth is a signing key and its public JWK Set, generated for one test in
// its temporary directory, and a Minter signing tokens with the key.
type Auth struct {
	// Dir holds the key (auth.SigningKeyFile) and the set
	// (auth.PublicKeysFile), as `orderctl keys generate` writes them.
	Dir string
	// KeyFile is the private signing key, JWKSFile the public set the
	// services verify with.
	KeyFile, JWKSFile string

	t      testing.TB
	minter *authclient.Minter
}

// NewAuth generates a key for t; its tokens are issued by the wall clock.
func NewAuth(t testing.TB) *Auth { return NewAuthAt(t, time.Now) }

// NewAuthAt is NewAuth with tokens issued by now, for a service on a manual
// clock.
func NewAuthAt(t testing.TB, now func() time.Time) *Auth {
	t.Helper()
	dir := t.TempDir()
	if _, err := auth.GenerateKeys(dir, 1); err != nil {
		t.Fatalf("generating the signing key: %v", err)
	}
	a := &Auth{Dir: dir, KeyFile: filepath.Join(dir, auth.SigningKeyFile), JWKSFile: filepath.Join(dir, auth.PublicKeysFile), t: t}
	m, err := authclient.NewMinter(authclient.MinterConfig{KeyFile: a.KeyFile, TTL: time.Hour, Now: now})
	if err != nil {
		t.Fatalf("reading the signing key: %v", err)
	}
	a.minter = m
	return a
}

// Env is the environment that turns a service process's authentication on
// with a's keys and the harness limits (HarnessPlaceOrderRate).
func (a *Auth) Env() []string {
	return []string{
		"ORDERFLOW_AUTH_JWKS_FILE=" + a.JWKSFile,
		"ORDERFLOW_AUTH_PLACE_ORDER_RATE=" + strconv.Itoa(HarnessPlaceOrderRate),
		"ORDERFLOW_AUTH_PLACE_ORDER_BURST=" + strconv.Itoa(HarnessPlaceOrderBurst),
	}
}

// Settings are the auth.Settings of an in-process service: a's keys, the
// local issuer and audience, and the harness limits.
func (a *Auth) Settings() auth.Settings {
	return auth.Settings{JWKSFile: a.JWKSFile, Issuer: auth.LocalIssuer, Audience: auth.DefaultAudience,
		Leeway: 30 * time.Second, PlaceOrderRate: HarnessPlaceOrderRate, PlaceOrderBurst: HarnessPlaceOrderBurst}
}

// Minter signs tokens with a's key, for clients that mint per caller.
func (a *Auth) Minter() *authclient.Minter { return a.minter }

// User is a token for the user id; a failure fails the test.
func (a *Auth) User(id string) string { return a.must(a.minter.User(id)) }

// Shop is a token for the shop id; a failure fails the test.
func (a *Auth) Shop(id string) string { return a.must(a.minter.Shop(id)) }

// Operator is an operator's token, for harness clients that act for many
// users; a failure fails the test.
func (a *Auth) Operator() string { return a.must(a.minter.Operator()) }

func (a *Auth) must(token string, err error) string {
	a.t.Helper()
	if err != nil {
		a.t.Fatalf("minting a token: %v", err)
	}
	return token
}
