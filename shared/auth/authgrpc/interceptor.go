// Package authgrpc puts shared/auth on a gRPC server: interceptors that
// verify a call's bearer token, ask the policy, take from the caller's rate
// limit and put the caller in the context, and the statuses of their
// refusals. REST calls run them too: the gateway calls the gRPC server
// in-process (shared/server).
package authgrpc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/orderflow/orderflow/shared/auth"
	"github.com/orderflow/orderflow/shared/server"
)

// ErrorDomain is the domain of the google.rpc.ErrorInfo of every refusal.
const ErrorDomain = "orderflow.auth"

// The reasons of the refusals' google.rpc.ErrorInfo, which clients can act
// on (a new token for TOKEN_EXPIRED, another caller for NOT_ALLOWED).
const (
	ReasonTokenMissing = "TOKEN_MISSING"
	ReasonTokenInvalid = "TOKEN_INVALID"
	ReasonTokenExpired = "TOKEN_EXPIRED"
	ReasonNotAllowed   = "NOT_ALLOWED"
	ReasonRateLimited  = "RATE_LIMITED"
)

// refusalsMetric counts the calls the Interceptor refused, by reason.
const refusalsMetric = "orderflow_auth_refusals_total"

// TokenVerifier says who a bearer token's caller is (auth.Verifier).
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (auth.Caller, error)
}

// InterceptorConfig is what the Interceptor checks with.
type InterceptorConfig struct {
	// Verifier checks the tokens. Required.
	Verifier TokenVerifier
	// Policy decides who may call what. Required.
	Policy *auth.Policy
	// Limiter limits its methods per caller; nil limits nothing.
	Limiter *auth.Limiter
	// Public are the methods (full names) and services (a prefix ending in
	// "/") called without a token (nil: DefaultPublic; empty: none).
	Public []string
	// Realm names the protected API in the WWW-Authenticate challenge
	// (default "orderflow").
	Realm string
	// Registry receives orderflow_auth_refusals_total. Required.
	Registry prometheus.Registerer
}

// DefaultPublic are the health and reflection services: probes and tools
// call them without a token, and they tell nothing about orders.
func DefaultPublic() []string {
	return []string{
		"/grpc.health.v1.Health/",
		"/grpc.reflection.v1.ServerReflection/",
		"/grpc.reflection.v1alpha.ServerReflection/",
	}
}

// Interceptor authenticates, authorizes and rate-limits every call but the
// public ones, before the handler runs: a refused call changes nothing.
type Interceptor struct {
	cfg      InterceptorConfig
	refusals *prometheus.CounterVec
}

// NewInterceptor returns the Interceptor of cfg.
func NewInterceptor(cfg InterceptorConfig) (*Interceptor, error) {
	if cfg.Verifier == nil || cfg.Policy == nil || cfg.Registry == nil {
		return nil, errors.New("auth: the interceptor needs a verifier, a policy and a registry")
	}
	if cfg.Public == nil {
		cfg.Public = DefaultPublic()
	}
	if cfg.Realm == "" {
		cfg.Realm = "orderflow"
	}
	if strings.ContainsAny(cfg.Realm, `"\`) {
		return nil, errors.New(`auth: the realm must not contain " or \`)
	}
	refusals := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: refusalsMetric,
		Help: "Calls refused before their handler: no or bad token, not allowed, over the rate limit; by reason.",
	}, []string{"reason"})
	// Every reason's series exists from the start, at 0, so that increase()
	// over it means refusals.
	for _, r := range []string{ReasonTokenMissing, ReasonTokenInvalid, ReasonTokenExpired, ReasonNotAllowed, ReasonRateLimited} {
		refusals.WithLabelValues(r)
	}
	if err := cfg.Registry.Register(refusals); err != nil {
		return nil, fmt.Errorf("registering %s: %w", refusalsMetric, err)
	}
	return &Interceptor{cfg: cfg, refusals: refusals}, nil
}

// Chain is the interceptor as a service's extra unary and stream
// interceptors; none when i is nil (authentication off).
func (i *Interceptor) Chain() ([]grpc.UnaryServerInterceptor, []grpc.StreamServerInterceptor) {
	if i == nil {
		return nil, nil
	}
	return []grpc.UnaryServerInterceptor{i.Unary}, []grpc.StreamServerInterceptor{i.Stream}
}

func (i *Interceptor) public(method string) bool {
	for _, p := range i.cfg.Public {
		if method == p || (strings.HasSuffix(p, "/") && strings.HasPrefix(method, p)) {
			return true
		}
	}
	return false
}

// Unary is the interceptor of unary calls, to be put in the server's chain
// (server.GRPCOptions.Unary), where REST calls run it too.
func (i *Interceptor) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if i.public(info.FullMethod) {
		return handler(ctx, req)
	}
	ctx, stored, err := i.admit(ctx, info.FullMethod, req)
	if err != nil {
		return nil, err
	}
	if !stored {
		return handler(ctx, req)
	}
	ctx, checked := auth.WithOrderCheck(ctx)
	resp, err := handler(ctx, req)
	if status.Code(err) == codes.PermissionDenied {
		i.refusals.WithLabelValues(ReasonNotAllowed).Inc()
	}
	if err == nil && !checked() {
		// The service answered a call whose permission depends on the
		// stored order without asking: a bug, and no answer is safer than
		// another caller's order.
		return nil, server.Internal(fmt.Errorf("auth: %s answered without auth.OrderAccess.CheckOrder", info.FullMethod))
	}
	return resp, err
}

// Stream is the interceptor of streaming calls. A stream's messages come
// after it started, so a rule that matches a request field refuses it for
// every role but operators.
func (i *Interceptor) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if i.public(info.FullMethod) {
		return handler(srv, ss)
	}
	ctx, stored, err := i.admit(ss.Context(), info.FullMethod, nil)
	if err != nil {
		return err
	}
	if stored {
		return i.permissionDenied(ss.Context(), fmt.Errorf("%w: %s decides per stored order, which a stream cannot", auth.ErrPermissionDenied, info.FullMethod))
	}
	return handler(srv, &callerStream{ServerStream: ss, ctx: ctx})
}

// admit verifies the call's token, asks the policy and takes from the
// caller's bucket; it returns the context carrying the caller, whether
// the service must check the stored order, or the refusal.
func (i *Interceptor) admit(ctx context.Context, method string, req any) (context.Context, bool, error) {
	token, reason := bearer(ctx)
	if reason != "" {
		return nil, false, i.unauthenticated(ctx, reason, `want one authorization "Bearer <token>"`)
	}
	caller, err := i.cfg.Verifier.Verify(ctx, token)
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return nil, false, i.unauthenticated(ctx, ReasonTokenExpired, "the bearer token has expired")
		}
		return nil, false, i.unauthenticated(ctx, ReasonTokenInvalid, "invalid bearer token")
	}
	stored, err := i.cfg.Policy.Authorize(caller, method, req)
	if err != nil {
		return nil, false, i.permissionDenied(ctx, err)
	}
	if i.cfg.Limiter != nil && i.cfg.Limiter.Limits(method) {
		if ok, wait := i.cfg.Limiter.Allow(caller.Identity()); !ok {
			return nil, false, i.rateLimited(ctx, wait)
		}
	}
	return auth.WithCaller(ctx, caller), stored, nil
}

// bearer returns the call's bearer token, or the reason it has none: no
// authorization metadata is TOKEN_MISSING; another scheme, an empty token
// or two authorization values (which one would count?) TOKEN_INVALID.
func bearer(ctx context.Context) (string, string) {
	md, _ := metadata.FromIncomingContext(ctx)
	values := md.Get("authorization")
	switch len(values) {
	case 0:
		return "", ReasonTokenMissing
	case 1:
	default:
		return "", ReasonTokenInvalid
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(values[0]), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "bearer") || token == "" {
		return "", ReasonTokenInvalid
	}
	return token, ""
}

// unauthenticated is the UNAUTHENTICATED status of a refused token. Its
// message is the RFC 6750 challenge itself: the REST gateway makes an
// UNAUTHENTICATED status's message the WWW-Authenticate header, so the
// header is a valid challenge; gRPC callers get it as www-authenticate
// header metadata too. Over REST the metadata is not set, or the header
// would carry the challenge twice.
func (i *Interceptor) unauthenticated(ctx context.Context, reason, description string) error {
	i.refusals.WithLabelValues(reason).Inc()
	return unauthenticated(ctx, i.cfg.Realm, reason, description)
}

func unauthenticated(ctx context.Context, realm, reason, description string) error {
	challenge := fmt.Sprintf(`Bearer realm=%q`, realm)
	if reason != ReasonTokenMissing {
		// RFC 6750 §3: a request without credentials gets no error code.
		challenge += fmt.Sprintf(`, error="invalid_token", error_description=%q`, description)
	}
	if server.Protocol(ctx) == "grpc" {
		_ = grpc.SetHeader(ctx, metadata.Pairs("www-authenticate", challenge))
	}
	return withDetails(codes.Unauthenticated, challenge, errorInfo(reason))
}

func (i *Interceptor) permissionDenied(ctx context.Context, cause error) error {
	i.refusals.WithLabelValues(ReasonNotAllowed).Inc()
	return permissionDenied(ctx, i.cfg.Realm, cause)
}

// permissionDenied is the PERMISSION_DENIED status of a refusal that wraps
// auth.ErrPermissionDenied, with the RFC 6750 insufficient_scope challenge.
func permissionDenied(ctx context.Context, realm string, cause error) error {
	_ = grpc.SetHeader(ctx, metadata.Pairs("www-authenticate", fmt.Sprintf(`Bearer realm=%q, error="insufficient_scope"`, realm)))
	return withDetails(codes.PermissionDenied, cause.Error(), errorInfo(ReasonNotAllowed))
}

// GRPCError maps the errors of auth.OrderAccess.CheckOrder to their statuses
// (PERMISSION_DENIED, UNAUTHENTICATED) for a service's port; it returns
// other errors unchanged. The Interceptor counts the PERMISSION_DENIED
// answers of per-order calls in orderflow_auth_refusals_total.
func GRPCError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, auth.ErrPermissionDenied):
		return permissionDenied(ctx, "orderflow", err)
	case errors.Is(err, auth.ErrUnauthenticated):
		return unauthenticated(ctx, "orderflow", ReasonTokenMissing, "")
	}
	return err
}

func (i *Interceptor) rateLimited(ctx context.Context, wait time.Duration) error {
	i.refusals.WithLabelValues(ReasonRateLimited).Inc()
	// Whole seconds, at least one: Retry-After has no finer unit, and zero
	// would invite an immediate retry.
	secs := max(int64((wait+time.Second-1)/time.Second), 1)
	// The REST gateway turns the RetryInfo into Retry-After; metadata
	// would add the header a second time.
	if server.Protocol(ctx) == "grpc" {
		_ = grpc.SetHeader(ctx, metadata.Pairs(strings.ToLower(server.RetryAfterHeader), strconv.FormatInt(secs, 10)))
	}
	return withDetails(codes.ResourceExhausted, "too many calls; retry later",
		&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Duration(secs) * time.Second)}, errorInfo(ReasonRateLimited))
}

func errorInfo(reason string) *errdetails.ErrorInfo {
	return &errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain}
}

func withDetails(code codes.Code, message string, details ...protoadapt.MessageV1) error {
	st := status.New(code, message)
	withDetail, err := st.WithDetails(details...)
	if err != nil {
		// Only a detail that cannot be marshalled fails here; the plain
		// status still tells the caller what went wrong.
		return st.Err()
	}
	return withDetail.Err()
}

// callerStream is a server stream whose context carries the caller.
type callerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *callerStream) Context() context.Context { return s.ctx }
