package auth

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	outboxv1 "github.com/orderflow/orderflow/shared/gen/orderflow/outbox/v1"
)

// ErrPermissionDenied is the cause of every call the Policy refuses; the
// error wrapping it says why.
var ErrPermissionDenied = errors.New("permission denied")

// Match is what, besides its role, a caller must be for a call.
type Match int

const (
	// MatchRole: the role suffices.
	MatchRole Match = iota
	// MatchUser: the request's user_id (GetUserId) is the caller's user.
	MatchUser
	// MatchShop: the request's shop_id (GetShopId) is the caller's shop.
	MatchShop
	// MatchStored: the order the call names must be the caller's; the
	// service decides once it has loaded it (OrderAccess.CheckOrder), and
	// the interceptor (authgrpc) refuses to answer a call whose service did not ask.
	MatchStored
)

// Rule is who may call one method: the roles allowed, each with what it
// must match. Operators may call every method and need no rule.
type Rule map[Role]Match

// Policy decides, per RPC, whether a caller may make it. Methods without a
// rule are open to operators only.
type Policy struct {
	rules map[string]Rule
}

// NewPolicy returns the policy of rules, keyed by full method name
// ("/orderflow.order.v1.OrderCommandService/PlaceOrder").
func NewPolicy(rules map[string]Rule) (*Policy, error) {
	for method, rule := range rules {
		for role, m := range rule {
			if !role.Valid() || role == RoleOperator {
				return nil, fmt.Errorf("auth: the rule of %s names role %q (operators need no rule)", method, role)
			}
			if m < MatchRole || m > MatchStored {
				return nil, fmt.Errorf("auth: the rule of %s has an unknown match %d", method, m)
			}
		}
	}
	return &Policy{rules: rules}, nil
}

// DefaultRules are orderflow's: a user places orders for itself, reads and
// cancels its own, lists its own; a shop lists its shop's orders, reads and
// advances them. The relay's admin API has no rule: operators only.
func DefaultRules() map[string]Rule {
	return map[string]Rule{
		orderv1.OrderCommandService_PlaceOrder_FullMethodName:   {RoleUser: MatchUser},
		orderv1.OrderCommandService_GetOrder_FullMethodName:     {RoleUser: MatchStored, RoleShop: MatchStored},
		orderv1.OrderCommandService_CancelOrder_FullMethodName:  {RoleUser: MatchStored},
		orderv1.OrderCommandService_AdvanceOrder_FullMethodName: {RoleShop: MatchStored},
		orderv1.OrderQueryService_GetOrder_FullMethodName:       {RoleUser: MatchStored, RoleShop: MatchStored},
		orderv1.OrderQueryService_ListUserOrders_FullMethodName: {RoleUser: MatchUser},
		orderv1.OrderQueryService_ListShopOrders_FullMethodName: {RoleShop: MatchShop},
	}
}

// DefaultPolicy is the Policy of DefaultRules.
func DefaultPolicy() *Policy {
	p, err := NewPolicy(DefaultRules())
	if err != nil {
		panic(err) // DefaultRules is a constant table; its test keeps it valid.
	}
	return p
}

// AdminMethods are the full method names of the relay's admin API, which
// DefaultRules leaves to operators.
func AdminMethods() []string {
	desc := outboxv1.OutboxAdminService_ServiceDesc
	out := make([]string, 0, len(desc.Methods))
	for _, m := range desc.Methods {
		out = append(out, "/"+desc.ServiceName+"/"+m.MethodName)
	}
	return out
}

// Authorize decides whether caller may call method with req (nil for a
// stream, whose messages come later: a rule matching a request field then
// refuses). It reports whether the service must still check the stored
// order (MatchStored). A refusal wraps ErrPermissionDenied.
func (p *Policy) Authorize(caller Caller, method string, req any) (stored bool, err error) {
	if caller.Role == RoleOperator {
		return false, nil
	}
	match, ok := p.rules[method][caller.Role]
	if !ok {
		return false, fmt.Errorf("%w: role %s may not call %s", ErrPermissionDenied, caller.Role, method)
	}
	switch match {
	case MatchRole:
		return false, nil
	case MatchStored:
		return true, nil
	case MatchUser:
		r, ok := req.(interface{ GetUserId() string })
		if !ok || r.GetUserId() != caller.User {
			return false, fmt.Errorf("%w: the request's user is not the caller", ErrPermissionDenied)
		}
		return false, nil
	case MatchShop:
		r, ok := req.(interface{ GetShopId() string })
		if !ok || r.GetShopId() != caller.Shop {
			return false, fmt.Errorf("%w: the request's shop is not the caller", ErrPermissionDenied)
		}
		return false, nil
	}
	return false, fmt.Errorf("%w: no rule for %s", ErrPermissionDenied, method)
}

// Owner is whose an order is: its user and its shop.
type Owner struct {
	User, Shop string
}

// OrderAccess is the check a service's application layer makes after it
// loaded an order and before it changes or returns it: order-command's
// GetOrder, CancelOrder and AdvanceOrder (inside the transaction, so a
// refused change writes nothing), order-query's GetOrder. A refusal wraps
// ErrPermissionDenied; the ports map it to PERMISSION_DENIED (authgrpc.GRPCError).
//
// CheckMissing is asked instead when the order does not exist: a caller
// that may only see its own orders gets the refusal CheckOrder gives for
// another caller's order, so that which order numbers exist cannot be
// probed; an operator gets the service's NOT_FOUND.
type OrderAccess interface {
	CheckOrder(ctx context.Context, owner Owner) error
	CheckMissing(ctx context.Context) error
}

// CheckOrder allows the caller in ctx an order that is its own: a user's
// as its user, a shop's as its shop; an operator every order. A context
// without a caller is refused (ErrUnauthenticated): a service built with
// this check has authentication on.
func (p *Policy) CheckOrder(ctx context.Context, owner Owner) error {
	if c, ok := ctx.Value(checkKey{}).(*atomic.Bool); ok {
		c.Store(true)
	}
	caller, ok := FromContext(ctx)
	if !ok {
		return fmt.Errorf("%w: no caller", ErrUnauthenticated)
	}
	switch caller.Role {
	case RoleOperator:
		return nil
	case RoleUser:
		if owner.User == caller.User {
			return nil
		}
	case RoleShop:
		if owner.Shop == caller.Shop {
			return nil
		}
	}
	return errNotCallers
}

// errNotCallers is the refusal of an order that is not the caller's, and of
// one that does not exist: one error for both, so the two cannot be told
// apart.
var errNotCallers = fmt.Errorf("%w: the order does not exist or is not the caller's", ErrPermissionDenied)

// CheckMissing answers for an order that does not exist: nil (the service
// answers NOT_FOUND) for an operator, the refusal of CheckOrder for a user
// or a shop. A context without a caller is refused (ErrUnauthenticated).
func (p *Policy) CheckMissing(ctx context.Context) error {
	if c, ok := ctx.Value(checkKey{}).(*atomic.Bool); ok {
		c.Store(true)
	}
	caller, ok := FromContext(ctx)
	if !ok {
		return fmt.Errorf("%w: no caller", ErrUnauthenticated)
	}
	if caller.Role == RoleOperator {
		return nil
	}
	return errNotCallers
}

// Unprotected is the OrderAccess of a service running without
// authentication (an explicit setting, warned about at start): every order
// is everyone's.
type Unprotected struct{}

// CheckOrder allows everything.
func (Unprotected) CheckOrder(context.Context, Owner) error { return nil }

// CheckMissing lets the service answer NOT_FOUND.
func (Unprotected) CheckMissing(context.Context) error { return nil }

// checkKey marks a call whose rule is MatchStored; CheckOrder records that
// the service asked.
type checkKey struct{}

// WithOrderCheck marks ctx as a call whose permission depends on the
// stored order; checked reports whether CheckOrder was asked with it. The
// interceptor uses it to refuse to answer a call the service answered
// without asking.
func WithOrderCheck(ctx context.Context) (_ context.Context, checked func() bool) {
	asked := new(atomic.Bool)
	return context.WithValue(ctx, checkKey{}, asked), asked.Load
}
