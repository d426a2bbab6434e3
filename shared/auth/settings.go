package auth

import (
	"errors"
	"time"
)

// Settings are a service's ORDERFLOW_AUTH_* variables (the service puts
// them under envPrefix "AUTH_"). Authentication is on by default: a
// service needs a JWK Set file or URL to start, unless Disabled turns
// authentication off explicitly. authgrpc.FromSettings builds the checks
// from them.
type Settings struct {
	// Disabled turns authentication off (ORDERFLOW_AUTH_DISABLED=true):
	// every caller may call every method. It is the only way to run a
	// service without a JWK Set, and the service logs a warning at start.
	Disabled bool `env:"DISABLED" envDefault:"false"`
	// JWKSFile is the public JWK Set file tokens are verified with
	// (orderctl keys generate writes .state/auth/jwks.json).
	JWKSFile string `env:"JWKS_FILE"`
	// JWKSURL is an identity provider's JWK Set, instead of JWKSFile.
	JWKSURL string `env:"JWKS_URL"`
	// Issuer is the iss every token must carry.
	Issuer string `env:"ISSUER" envDefault:"orderflow-local"`
	// Audience must be among a token's aud.
	Audience string `env:"AUDIENCE" envDefault:"orderflow"`
	// Leeway is the clock skew tolerated on exp, nbf and iat (at most
	// MaxLeeway).
	Leeway time.Duration `env:"LEEWAY" envDefault:"30s"`
	// PlaceOrderRate and PlaceOrderBurst are each caller's PlaceOrder
	// token bucket: calls per second on average, and at once.
	PlaceOrderRate  float64 `env:"PLACE_ORDER_RATE" envDefault:"5"`
	PlaceOrderBurst int     `env:"PLACE_ORDER_BURST" envDefault:"20"`
	// TokenCacheSize bounds the verified tokens remembered, so that a
	// token reused for many calls has its signature checked once; a
	// negative size (-1) turns the cache off, 0 is the default
	// (VerifierConfig.CacheSize).
	TokenCacheSize int `env:"TOKEN_CACHE_SIZE" envDefault:"10000"`
	// TokenCacheTTL is the longest a remembered token is accepted without
	// a check (at most MaxCacheTTL; never past the token's exp).
	TokenCacheTTL time.Duration `env:"TOKEN_CACHE_TTL" envDefault:"1m"`
}

// ErrNoKeys is the error of settings that neither name a JWK Set nor turn
// authentication off: a service that forgot its keys must not start open.
var ErrNoKeys = errors.New("authentication is on by default and needs a JWK Set: set ORDERFLOW_AUTH_JWKS_FILE (or ORDERFLOW_AUTH_JWKS_URL), or ORDERFLOW_AUTH_DISABLED=true to run without authentication")

// Validate checks that the settings say how callers are authenticated:
// with a JWK Set file or URL (one of them), or not at all because Disabled
// says so. With Disabled, a JWK Set given too is ignored (the service's
// warning names it), so that turning authentication off takes one
// variable whatever else the environment sets.
func (s Settings) Validate() error {
	if s.Disabled {
		return nil
	}
	switch {
	case s.JWKSFile == "" && s.JWKSURL == "":
		return ErrNoKeys
	case s.JWKSFile != "" && s.JWKSURL != "":
		return errors.New("ORDERFLOW_AUTH_JWKS_FILE and ORDERFLOW_AUTH_JWKS_URL are both set: set one")
	}
	return nil
}

// Enabled reports whether the settings turn authentication on: they name a
// JWK Set and Disabled is not set.
func (s Settings) Enabled() bool { return !s.Disabled && (s.JWKSFile != "" || s.JWKSURL != "") }
