// Package auth is the access control of orderflow's APIs: it verifies the
// bearer token of a call, decides whether its caller may make the call, and
// limits how often one caller may place orders.
//
// # Tokens
//
// A token is a JWT (RFC 7519) signed with an asymmetric key: EdDSA (Ed25519)
// for the keys orderctl generates, ES256 from other issuers by default (see
// VerifierConfig.Algorithms). "none" and the HMAC algorithms are never
// accepted, whatever the configuration: a public key set cannot be used as
// a shared secret. The Verifier picks the key by the token's "kid" header
// (required: a token without one is refused, not tried against every key) in
// a JWK Set read from a file (re-read when it changes, so keys rotate
// without a restart) or fetched from a URL (refreshed periodically, and at
// once, rate-limited, for a kid it does not know), so several keys verify
// at the same time during a rotation.
//
// It checks "iss" (exactly VerifierConfig.Issuer), "aud" (must contain
// VerifierConfig.Audience), "exp" (required), "nbf" and "iat" (when present),
// with a bounded clock skew (VerifierConfig.Leeway, at most MaxLeeway). A
// token it accepted is remembered (VerifierConfig.CacheSize, keyed by the
// token's exact bytes) and accepted again without the checks until the
// earlier of its exp and VerifierConfig.CacheTTL (1m) after it was
// verified, or until the JWK Set file changes; refusals are never
// remembered. The claims that say who the caller is:
//
//	sub             the caller's identity, the key of its rate limit (required)
//	orderflow_role  "user", "shop" or "operator" (required)
//	orderflow_user  the user the caller is (required for role user, absent otherwise)
//	orderflow_shop  the shop the caller is (required for role shop, absent otherwise)
//
// # Roles
//
// The Policy says, per RPC (its full method name), which roles may call it
// and which request field must name the caller: a user places orders for,
// and lists the orders of, itself only; a shop lists its own shop's orders.
// Whether a user may read or cancel one order, or a shop advance it,
// depends on the stored order: the interceptor lets such calls (MatchStored)
// through to the service, whose application layer loads the order and asks
// OrderAccess.CheckOrder before it returns or changes anything (or
// CheckMissing when there is no such order, which refuses a user or a shop
// as another's order would, so existence is not told) —
// order-command inside the order's transaction, before the domain rules, so
// a refused change writes nothing and tells nothing of the order's state.
// The interceptor answers INTERNAL rather than pass on the answer of a
// service that did not ask. An operator may call everything, the relay's
// admin API included.
//
// # Refusals
//
// The interceptors of package authgrpc (gRPC unary and stream; REST runs
// the same chain through the in-process gateway) answer a missing,
// malformed or failing token with
// UNAUTHENTICATED (HTTP 401) and a WWW-Authenticate challenge, a call the
// caller's role or identity does not allow with PERMISSION_DENIED (403), and
// a caller over its PlaceOrder rate with RESOURCE_EXHAUSTED (429) carrying a
// google.rpc.RetryInfo (the gateway turns it into Retry-After). Every
// refusal carries a google.rpc.ErrorInfo whose reason says why, in the
// "orderflow.auth" domain (authgrpc.ErrorDomain), and changes nothing.
//
// # Settings
//
// A service reads Settings from its ORDERFLOW_AUTH_* variables
// (JWKS_FILE or JWKS_URL, ISSUER, AUDIENCE, LEEWAY, PLACE_ORDER_RATE,
// PLACE_ORDER_BURST, TOKEN_CACHE_SIZE, TOKEN_CACHE_TTL, DISABLED) and builds its checks with
// authgrpc.FromSettings. Authentication is on by default: without a JWK
// Set a service refuses to start (ErrNoKeys), unless DISABLED=true turns
// authentication off, which the service logs as a warning
// at start. Locally, `orderctl keys generate` writes the signing key and
// the public JWK Set (.state/auth), and `orderctl token --user u-1` prints
// a token signed with it.
package auth
