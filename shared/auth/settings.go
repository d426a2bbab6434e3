package auth

import "time"

// Settings are a service's ORDERFLOW_AUTH_* variables (the service puts
// them under envPrefix "AUTH_"). Authentication is on when a JWK Set file
// or URL is given; authgrpc.FromSettings builds the checks from them.
type Settings struct {
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
}

// Enabled reports whether the settings turn authentication on.
func (s Settings) Enabled() bool { return s.JWKSFile != "" || s.JWKSURL != "" }
