package authgrpc

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/shared/auth"
)

// FromSettings builds a service's checks from its settings: the
// interceptor for its gRPC chain and the OrderAccess for its application
// layer. Settings that name no JWK Set and do not turn authentication off
// are refused (auth.ErrNoKeys). With authentication off (Disabled) it logs
// a warning and returns no interceptor and auth.Unprotected: every caller
// may do everything. now is the clock tokens and buckets are checked
// against.
func FromSettings(ctx context.Context, s auth.Settings, logger *slog.Logger, registry prometheus.Registerer, now func() time.Time) (*Interceptor, auth.OrderAccess, error) {
	ic, access, err := Build(ctx, s, logger, now)
	if err != nil || ic == nil {
		return nil, access, err
	}
	interceptor, err := NewInterceptor(InterceptorConfig{Verifier: ic.Verifier, Policy: ic.Policy, Limiter: ic.Limiter, Registry: registry})
	if err != nil {
		return nil, nil, err
	}
	return interceptor, access, nil
}

// Build validates the settings and builds the verifier, the policy and
// the limiter of an InterceptorConfig without making the interceptor, for
// a service that adds its own public methods or realm (the relay's admin
// API). With authentication off it logs the warning and returns nil and
// auth.Unprotected.
func Build(ctx context.Context, s auth.Settings, logger *slog.Logger, now func() time.Time) (*InterceptorConfig, auth.OrderAccess, error) {
	if err := s.Validate(); err != nil {
		return nil, nil, err
	}
	if !s.Enabled() {
		logger.WarnContext(ctx, "authentication is off: every caller may call every method",
			slog.String("switch", "ORDERFLOW_AUTH_DISABLED=true"),
			slog.String("ignored_jwks_file", s.JWKSFile), slog.String("ignored_jwks_url", s.JWKSURL))
		return nil, auth.Unprotected{}, nil
	}
	verifier, err := auth.NewVerifier(ctx, auth.VerifierConfig{JWKSFile: s.JWKSFile, JWKSURL: s.JWKSURL, Issuer: s.Issuer,
		Audience: s.Audience, Leeway: s.Leeway, CacheSize: s.TokenCacheSize, CacheTTL: s.TokenCacheTTL, Logger: logger, Now: now})
	if err != nil {
		return nil, nil, err
	}
	limiter, err := auth.NewLimiter(auth.LimiterConfig{Rate: s.PlaceOrderRate, Burst: s.PlaceOrderBurst, Now: now})
	if err != nil {
		return nil, nil, err
	}
	policy := auth.DefaultPolicy()
	logger.InfoContext(ctx, "authentication is on", slog.String("jwks_file", s.JWKSFile), slog.String("jwks_url", s.JWKSURL),
		slog.String("issuer", s.Issuer), slog.String("audience", s.Audience),
		slog.Int("token_cache_size", s.TokenCacheSize), slog.Duration("token_cache_ttl", s.TokenCacheTTL))
	return &InterceptorConfig{Verifier: verifier, Policy: policy, Limiter: limiter}, policy, nil
}
