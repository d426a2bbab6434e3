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
// layer. With authentication off (no JWK Set) it logs a warning and
// returns no interceptor and auth.Unprotected: every caller may do
// everything. now is the clock tokens and buckets are checked against.
func FromSettings(ctx context.Context, s auth.Settings, logger *slog.Logger, registry prometheus.Registerer, now func() time.Time) (*Interceptor, auth.OrderAccess, error) {
	if !s.Enabled() {
		logger.WarnContext(ctx, "authentication is off: every caller may call every method; set ORDERFLOW_AUTH_JWKS_FILE or ORDERFLOW_AUTH_JWKS_URL")
		return nil, auth.Unprotected{}, nil
	}
	verifier, err := auth.NewVerifier(ctx, auth.VerifierConfig{JWKSFile: s.JWKSFile, JWKSURL: s.JWKSURL, Issuer: s.Issuer,
		Audience: s.Audience, Leeway: s.Leeway, Logger: logger, Now: now})
	if err != nil {
		return nil, nil, err
	}
	limiter, err := auth.NewLimiter(auth.LimiterConfig{Rate: s.PlaceOrderRate, Burst: s.PlaceOrderBurst, Now: now})
	if err != nil {
		return nil, nil, err
	}
	policy := auth.DefaultPolicy()
	interceptor, err := NewInterceptor(InterceptorConfig{Verifier: verifier, Policy: policy, Limiter: limiter, Registry: registry})
	if err != nil {
		return nil, nil, err
	}
	logger.InfoContext(ctx, "authentication is on", slog.String("jwks_file", s.JWKSFile), slog.String("jwks_url", s.JWKSURL),
		slog.String("issuer", s.Issuer), slog.String("audience", s.Audience))
	return interceptor, policy, nil
}
