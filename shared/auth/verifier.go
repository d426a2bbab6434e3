package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxLeeway bounds VerifierConfig.Leeway: the clock skew tolerated on exp,
// nbf and iat. More would keep an expired token usable for longer than a
// short-lived token lives.
const MaxLeeway = 2 * time.Minute

// MaxCacheTTL bounds VerifierConfig.CacheTTL: how long a verified token may
// be accepted without its signature being checked again, and so how late a
// key removed from a JWK Set URL is noticed beyond the set's refresh.
const MaxCacheTTL = 10 * time.Minute

// verifiable are the signing algorithms a Verifier may be configured with:
// asymmetric ones only, so that the published keys cannot sign.
func verifiable() []string { return []string{"EdDSA", "ES256", "ES384", "RS256", "PS256"} }

// VerifierConfig locates the keys and names what a token must say.
type VerifierConfig struct {
	// JWKSFile is a local JWK Set of public keys, re-read when it changes.
	// Exactly one of JWKSFile and JWKSURL is set.
	JWKSFile string
	// JWKSURL is an identity provider's JWK Set (http or https).
	JWKSURL string
	// Issuer is the iss every token must carry. Required.
	Issuer string
	// Audience must be among a token's aud. Required.
	Audience string
	// Algorithms are the signing algorithms accepted (default EdDSA and
	// ES256); each is one of EdDSA, ES256, ES384, RS256, PS256.
	Algorithms []string
	// Leeway is the clock skew tolerated on exp, nbf and iat (default 30s,
	// at most MaxLeeway).
	Leeway time.Duration
	// ReloadInterval is how often JWKSFile is read again (default 10s).
	ReloadInterval time.Duration
	// RefreshInterval is how often JWKSURL is fetched again (default 10m).
	RefreshInterval time.Duration
	// UnknownKIDInterval is the least time between two fetches of JWKSURL
	// for a kid it did not have (default 1m): unknown kids are free to send.
	UnknownKIDInterval time.Duration
	// HTTPTimeout bounds one fetch of JWKSURL (default 5s).
	HTTPTimeout time.Duration
	// HTTPClient fetches JWKSURL (default: a client with HTTPTimeout).
	HTTPClient *http.Client
	// Logger receives the key reloads and their failures. Required.
	Logger *slog.Logger
	// CacheSize bounds the verified tokens remembered (default 10,000;
	// negative: none), the least recently used forgotten first. A token
	// remembered is accepted without its signature check until the
	// earlier of its exp (the leeway is applied by the full check only)
	// and CacheTTL after it was verified; a change of the JWK Set file
	// forgets every token.
	CacheSize int
	// CacheTTL is the longest a verified token is accepted from the cache
	// (default 1m, at most MaxCacheTTL): it bounds how long a key removed
	// from the JWK Set keeps its tokens accepted when the change cannot
	// be seen (a JWK Set URL).
	CacheTTL time.Duration
	// Now is the clock tokens are checked against (default time.Now).
	Now func() time.Time
}

func (c VerifierConfig) withDefaults() (VerifierConfig, error) {
	var errs []error
	if (c.JWKSFile == "") == (c.JWKSURL == "") {
		errs = append(errs, errors.New("auth: exactly one of the JWK Set file and URL is required"))
	}
	if c.JWKSURL != "" {
		if u, err := url.Parse(c.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("auth: the JWK Set URL %q is not an http(s) URL", c.JWKSURL))
		}
	}
	if c.Issuer == "" || c.Audience == "" {
		errs = append(errs, errors.New("auth: the issuer and the audience are required"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("auth: the verifier needs a logger"))
	}
	if len(c.Algorithms) == 0 {
		c.Algorithms = []string{"EdDSA", "ES256"}
	}
	for _, a := range c.Algorithms {
		if !slices.Contains(verifiable(), a) {
			errs = append(errs, fmt.Errorf("auth: algorithm %q is not accepted; use one of %v", a, verifiable()))
		}
	}
	if c.Leeway < 0 || c.Leeway > MaxLeeway {
		errs = append(errs, fmt.Errorf("auth: the leeway must be between 0 and %s", MaxLeeway))
	}
	if c.ReloadInterval < 0 || c.RefreshInterval < 0 || c.UnknownKIDInterval < 0 || c.HTTPTimeout < 0 {
		errs = append(errs, errors.New("auth: the reload, refresh and HTTP intervals must not be negative"))
	}
	if c.CacheTTL < 0 || c.CacheTTL > MaxCacheTTL {
		errs = append(errs, fmt.Errorf("auth: the token cache TTL must be between 0 and %s", MaxCacheTTL))
	}
	if c.Leeway == 0 {
		c.Leeway = 30 * time.Second
	}
	c.ReloadInterval = orDefault(c.ReloadInterval, 10*time.Second)
	c.RefreshInterval = orDefault(c.RefreshInterval, 10*time.Minute)
	c.UnknownKIDInterval = orDefault(c.UnknownKIDInterval, time.Minute)
	c.HTTPTimeout = orDefault(c.HTTPTimeout, 5*time.Second)
	c.CacheTTL = orDefault(c.CacheTTL, time.Minute)
	if c.CacheSize == 0 {
		c.CacheSize = 10_000
	}
	if c.HTTPClient == nil {
		c.HTTPClient = defaultHTTPClient(c.HTTPTimeout)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, errors.Join(errs...)
}

// orDefault is d, or def when d is zero.
func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// ErrUnauthenticated is the cause of every token the Verifier refuses; the
// error wrapping it says why.
var ErrUnauthenticated = errors.New("unauthenticated")

// Verifier checks bearer tokens and says who their callers are.
type Verifier struct {
	keys   keySource
	parser *jwt.Parser
	now    func() time.Time
	ttl    time.Duration
	cache  *tokenCache // nil: every token is checked in full
}

// NewVerifier reads (or fetches) the keys and returns the Verifier; ctx
// ends the background reloads.
func NewVerifier(ctx context.Context, cfg VerifierConfig) (*Verifier, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var keys keySource
	if cfg.JWKSFile != "" {
		keys, err = newFileKeys(ctx, cfg.JWKSFile, cfg.ReloadInterval, cfg.Logger)
	} else {
		keys, err = newURLKeys(ctx, cfg.JWKSURL, cfg)
	}
	if err != nil {
		return nil, err
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods(cfg.Algorithms),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
		jwt.WithStrictDecoding(),
	)
	v := &Verifier{keys: keys, parser: parser, now: cfg.Now, ttl: cfg.CacheTTL}
	if cfg.CacheSize > 0 {
		if v.cache, err = newTokenCache(cfg.CacheSize); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// Verify checks token (the compact JWT, without "Bearer ") and returns its
// caller. Every refusal wraps ErrUnauthenticated; an expired token also
// wraps jwt.ErrTokenExpired. A token accepted before is accepted again
// from the cache, without the checks, while its entry lasts (see
// VerifierConfig.CacheSize); refusals are not remembered.
func (v *Verifier) Verify(ctx context.Context, token string) (Caller, error) {
	if v.cache == nil {
		caller, _, err := v.verify(ctx, token)
		return caller, err
	}
	// The generation is read before the keys are: a verification that
	// overlaps a reload is tagged with the generation before it, so its
	// entry is never used under the new keys (fileKeys bumps the
	// generation after it swapped them).
	generation := v.keys.generation()
	now := v.now()
	if caller, ok := v.cache.get(token, now, generation); ok {
		return caller, nil
	}
	caller, exp, err := v.verify(ctx, token)
	if err != nil {
		return Caller{}, err
	}
	v.cache.add(token, caller, now, earliest(exp, now.Add(v.ttl)), generation)
	return caller, nil
}

// verify checks token in full and returns its caller and its exp.
func (v *Verifier) verify(ctx context.Context, token string) (Caller, time.Time, error) {
	var claims Claims
	keyfunc := v.keys.keyfunc(ctx)
	_, err := v.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		// The key is picked by kid only: a token without one would be
		// tried against every key, which makes the key that signed it a
		// guess rather than a statement.
		if kid, ok := t.Header["kid"].(string); !ok || kid == "" {
			return nil, errors.New("the token has no kid")
		}
		return keyfunc(t)
	})
	if err != nil {
		return Caller{}, time.Time{}, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	// The parser requires exp (WithExpirationRequired), so it is set.
	return callerOf(&claims), claims.ExpiresAt.Time, nil
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
