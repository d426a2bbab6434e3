package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// Role is what a caller is to orderflow.
type Role string

// The roles a token may carry in its orderflow_role claim.
const (
	// RoleUser places orders and reads, lists and cancels its own.
	RoleUser Role = "user"
	// RoleShop lists its shop's orders, reads them and advances them.
	RoleShop Role = "shop"
	// RoleOperator may call everything, the relay's admin API included.
	RoleOperator Role = "operator"
)

// Valid reports whether r is one of the three roles.
func (r Role) Valid() bool {
	switch r {
	case RoleUser, RoleShop, RoleOperator:
		return true
	}
	return false
}

// Claims is the payload of an orderflow token: the registered claims (sub,
// iss, aud, exp, nbf, iat, jti) and the three that say who the caller is.
type Claims struct {
	jwt.RegisteredClaims
	// Role is the caller's role (orderflow_role).
	Role Role `json:"orderflow_role"`
	// User is the user the caller is (orderflow_user), for RoleUser.
	User string `json:"orderflow_user,omitempty"`
	// Shop is the shop the caller is (orderflow_shop), for RoleShop.
	Shop string `json:"orderflow_shop,omitempty"`
}

// Validate checks the orderflow claims; jwt calls it after the registered
// claims passed. A token for a user names the user and no shop, one for a
// shop names the shop and no user, an operator's names neither: a token
// that says two things is refused rather than read one way.
func (c *Claims) Validate() error {
	if c.Subject == "" {
		return errors.New("the token has no sub")
	}
	switch c.Role {
	case RoleUser:
		if c.User == "" || c.Shop != "" {
			return errors.New("a user token names its user (orderflow_user) and no shop")
		}
	case RoleShop:
		if c.Shop == "" || c.User != "" {
			return errors.New("a shop token names its shop (orderflow_shop) and no user")
		}
	case RoleOperator:
		if c.User != "" || c.Shop != "" {
			return errors.New("an operator token names no user and no shop")
		}
	default:
		return fmt.Errorf("unknown orderflow_role %q", c.Role)
	}
	return nil
}

// Caller is who makes a call, as its verified token says.
type Caller struct {
	// Issuer and Subject are the token's iss and sub.
	Issuer, Subject string
	// Role is the caller's role.
	Role Role
	// User is set for RoleUser, Shop for RoleShop.
	User, Shop string
}

// Identity is the caller's key for its rate limit: the issuer and the
// subject, so two issuers' "u-1" are two callers.
func (c Caller) Identity() string { return c.Issuer + "\x00" + c.Subject }

func callerOf(c *Claims) Caller {
	return Caller{Issuer: c.Issuer, Subject: c.Subject, Role: c.Role, User: c.User, Shop: c.Shop}
}

type callerKey struct{}

// WithCaller returns ctx carrying caller; the interceptor (authgrpc) calls it for every
// call whose token it verified.
func WithCaller(ctx context.Context, caller Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, caller)
}

// FromContext returns the caller the interceptor (authgrpc) put in ctx.
func FromContext(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}
