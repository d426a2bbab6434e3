// Package authclient is the calling side of orderflow's tokens: it signs
// tokens for many callers with a local signing key (a Minter over
// auth.Issuer, caching each caller's token until it nears its expiry) and
// sends them as bearer tokens on gRPC calls (Bearer, OutgoingContext) and
// HTTP requests (SetBearer, Transport).
//
// It is what the load tools, the fault-injection suite and the tests use to
// drive a system whose services verify tokens; production callers get their
// tokens from an identity provider instead.
package authclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/orderflow/orderflow/shared/auth"
)

// MinterConfig is the signing key and the claims every token carries.
type MinterConfig struct {
	// KeyFile is the private signing key (auth.SigningKeyFile, as
	// `orderctl keys generate` writes it). Required.
	KeyFile string
	// Issuer and Audience are the tokens' iss and aud (default
	// auth.LocalIssuer and auth.DefaultAudience, what the services expect
	// unless configured otherwise).
	Issuer, Audience string
	// TTL is each token's lifetime (default 12h, at most auth.MaxTTL); a
	// cached token is replaced once less than half of it is left, so a long
	// run never sends an expired one.
	TTL time.Duration
	// Now is the clock tokens are issued by (default time.Now): a service
	// on a manual clock needs tokens from the same clock.
	Now func() time.Time
}

func (c MinterConfig) withDefaults() (MinterConfig, error) {
	if c.KeyFile == "" {
		return c, errors.New("authclient: the minter needs a signing key file")
	}
	if c.Issuer == "" {
		c.Issuer = auth.LocalIssuer
	}
	if c.Audience == "" {
		c.Audience = auth.DefaultAudience
	}
	if c.TTL == 0 {
		c.TTL = 12 * time.Hour
	}
	if c.TTL < 0 || c.TTL > auth.MaxTTL {
		return c, fmt.Errorf("authclient: a token's TTL must be positive and at most %s, got %s", auth.MaxTTL, c.TTL)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// Minter signs and caches tokens for users, shops and operators. It is safe
// for concurrent use.
type Minter struct {
	issuer *auth.Issuer
	ttl    time.Duration
	now    func() time.Time

	mu    sync.Mutex
	cache map[caller]minted
}

type caller struct {
	role auth.Role
	id   string
}

type minted struct {
	token   string
	renewAt time.Time
}

// NewMinter reads the signing key.
func NewMinter(cfg MinterConfig) (*Minter, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	issuer, err := auth.NewIssuer(auth.IssuerConfig{KeyFile: cfg.KeyFile, Issuer: cfg.Issuer, Audience: cfg.Audience, Now: cfg.Now})
	if err != nil {
		return nil, fmt.Errorf("authclient: %w", err)
	}
	return &Minter{issuer: issuer, ttl: cfg.TTL, now: cfg.Now, cache: make(map[caller]minted)}, nil
}

// User is a token of role user for the user id.
func (m *Minter) User(id string) (string, error) { return m.token(caller{auth.RoleUser, id}) }

// Shop is a token of role shop for the shop id.
func (m *Minter) Shop(id string) (string, error) { return m.token(caller{auth.RoleShop, id}) }

// Operator is a token of role operator: every API, the relay's admin API
// included.
func (m *Minter) Operator() (string, error) { return m.token(caller{auth.RoleOperator, ""}) }

func (m *Minter) token(c caller) (string, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.cache[c]; ok && now.Before(t.renewAt) {
		return t.token, nil
	}
	req := auth.TokenRequest{Role: c.role, TTL: m.ttl}
	switch c.role {
	case auth.RoleUser:
		req.User = c.id
	case auth.RoleShop:
		req.Shop = c.id
	}
	token, err := m.issuer.Issue(req)
	if err != nil {
		return "", fmt.Errorf("authclient: a token for %s %q: %w", c.role, c.id, err)
	}
	m.cache[c] = minted{token: token, renewAt: now.Add(m.ttl / 2)}
	return token, nil
}

// Bearer is a token as gRPC per-RPC credentials (grpc.WithPerRPCCredentials
// for a connection, grpc.PerRPCCredentials for one call). It does not ask
// for transport security: the local system and the tests talk plain text
// over loopback. An empty Bearer sends nothing, for a system with
// authentication off.
type Bearer string

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (b Bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	if b == "" {
		return nil, nil
	}
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (Bearer) RequireTransportSecurity() bool { return false }

var _ credentials.PerRPCCredentials = Bearer("")

// OutgoingContext is ctx with token as the bearer token of the gRPC calls
// made with it, for a client whose calls are made for different callers
// over one connection. An empty token adds nothing.
func OutgoingContext(ctx context.Context, token string) context.Context {
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// SetBearer sets req's Authorization header to token; an empty token sets
// nothing.
func SetBearer(req *http.Request, token string) {
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
}

// Transport adds Token to every request that has no Authorization header
// of its own, for an HTTP client that acts as one caller.
type Transport struct {
	// Base makes the requests (default http.DefaultTransport).
	Base http.RoundTripper
	// Token is the bearer token.
	Token string
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if t.Token == "" || req.Header.Get("Authorization") != "" {
		return base.RoundTrip(req)
	}
	// A RoundTripper must not change the caller's request.
	req = req.Clone(req.Context())
	SetBearer(req, t.Token)
	return base.RoundTrip(req)
}
