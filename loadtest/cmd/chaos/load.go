package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/orderflow/orderflow/loadtest/internal/orderapi"
	"github.com/orderflow/orderflow/shared/authclient"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
)

// order is one order the client placed.
type order struct {
	requestID string
	i         int64
	no        int64
	shard     int
	// started is the first attempt, confirmed the answer that carried the
	// order number: the latency a retrying app sees.
	started, confirmed time.Time
	visits             []*visit
}

// visit is one confirmed version of an order the read side must show.
type visit struct {
	o           *order
	version     int64
	confirmedAt time.Time
	// observedAt is when the query API first showed the version (zero
	// until then); written under client.mu.
	observedAt time.Time
}

// failure is one failed attempt the client saw.
type failure struct {
	at   time.Time
	op   string // place, change, read
	code string
}

// client is the careful app: it retries a failed call with the same
// requestId until it succeeds or retryFor passes, decides after a failed
// change by reading the order from order-command, and remembers every
// confirmed order and version. Background readers check each confirmed
// version through the query API.
type client struct {
	conns       []*grpc.ClientConn
	command     orderv1.OrderCommandServiceClient
	query       orderv1.OrderQueryServiceClient
	runID       string
	changeShare float64
	retryFor    time.Duration
	shards      int
	// tokens signs each call's token: the order's user places and cancels
	// it, its shop advances it, the readers check it as an operator (nil:
	// no tokens).
	tokens *authclient.Minter

	mu       sync.Mutex
	orders   []*order
	visits   []*visit
	failures []failure
	gaveUp   []string // requestIds never confirmed
	changes  int

	queue chan *visit
}

// newClient connects to every instance of order-command and order-query:
// calls go round-robin over the instances that are up, so a killed one
// costs only the calls in flight on it, which the retries absorb.
func newClient(commandGRPC, queryGRPC []string, tokens *authclient.Minter, runID string, changeShare float64, retryFor time.Duration, shards int) (*client, error) {
	// grpc-go backs off reconnecting up to 120 s by default: after a 30 s
	// outage the channel would keep failing calls fast long after the
	// server is back, an outage of the client's own making. A careful app
	// bounds it, so the client measures the server's outage.
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: 2 * time.Second,
			Backoff: grpcbackoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second}})}
	cc, err := orderapi.DialSpread(strings.Join(commandGRPC, ","), opts...)
	if err != nil {
		return nil, err
	}
	qc, err := orderapi.DialSpread(strings.Join(queryGRPC, ","), opts...)
	if err != nil {
		_ = cc.Close()
		return nil, err
	}
	return &client{conns: []*grpc.ClientConn{cc, qc}, command: orderv1.NewOrderCommandServiceClient(cc),
		query: orderv1.NewOrderQueryServiceClient(qc), runID: runID, tokens: tokens,
		changeShare: changeShare, retryFor: retryFor, shards: shards, queue: make(chan *visit, 1<<20)}, nil
}

func (c *client) close() {
	for _, cc := range c.conns {
		_ = cc.Close()
	}
}

// callTimeout bounds one attempt; the services answer within their own
// request timeouts (5 s) unless the call is lost.
const callTimeout = 10 * time.Second

// userOf and shopOf are the user and the shop of order i.
func userOf(i int64) string { return fmt.Sprintf("user-%d", i%5000) }
func shopOf(i int64) string { return fmt.Sprintf("shop-%d", i%300) }

// asUser and asShop are ctx carrying the token of order i's user or shop.
func (c *client) asUser(ctx context.Context, i int64) (context.Context, error) {
	if c.tokens == nil {
		return ctx, nil
	}
	token, err := c.tokens.User(userOf(i))
	return authclient.OutgoingContext(ctx, token), err
}

func (c *client) asShop(ctx context.Context, i int64) (context.Context, error) {
	if c.tokens == nil {
		return ctx, nil
	}
	token, err := c.tokens.Shop(shopOf(i))
	return authclient.OutgoingContext(ctx, token), err
}

// place asks for order i with requestID as its user; every attempt of one
// order sends the same request, so a retry is the same order to the server.
func (c *client) place(ctx context.Context, requestID string, i int64) (int64, error) {
	ctx, err := c.asUser(ctx, i)
	if err != nil {
		return 0, backoff.Permanent(err)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.command.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{
		RequestId: requestID, UserId: userOf(i), ShopId: shopOf(i),
		DeliveryAddress: "1 Teheran-ro, Seoul",
		Items:           []*orderv1.OrderItem{{MenuId: "m-1", Name: "Bibimbap", Quantity: 2, UnitPrice: 9000}},
	})
	if err != nil {
		return 0, err
	}
	return resp.GetOrder().GetOrderNo(), nil
}

// changeOnce cancels order o (as its user) or advances it to target (as
// its shop), once.
func (c *client) changeOnce(ctx context.Context, o *order, target orderv1.Order_Status) (int64, error) {
	as := c.asShop
	if target == orderv1.Order_CANCELLED {
		as = c.asUser
	}
	ctx, err := as(ctx, o.i)
	if err != nil {
		return 0, backoff.Permanent(err)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if target == orderv1.Order_CANCELLED {
		resp, err := c.command.CancelOrder(ctx, &orderv1.CancelOrderRequest{OrderNo: o.no, Reason: "changed my mind"})
		return int64(resp.GetOrder().GetVersion()), err
	}
	resp, err := c.command.AdvanceOrder(ctx, &orderv1.AdvanceOrderRequest{OrderNo: o.no, Status: target})
	return int64(resp.GetOrder().GetVersion()), err
}

// readAt reports whether order-query shows order o at version or later
// (the server waits up to its MIN_VERSION_WAIT for it). The readers check
// what the system did, for every user at once, so they read as an
// operator: an order not projected yet is then 404 (not visible), where
// its user would get 403 (an absent order looks like another's) and the
// report's read errors would count the projector's lag as refusals.
func (c *client) readAt(ctx context.Context, o *order, version int64) (bool, error) {
	no := o.no
	if c.tokens != nil {
		token, err := c.tokens.Operator()
		if err != nil {
			return false, err
		}
		ctx = authclient.OutgoingContext(ctx, token)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.query.GetOrder(ctx, &orderv1.GetOrderViewRequest{OrderNo: no, MinVersion: int32(version)})
	if status.Code(err) == codes.NotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !resp.GetStale() && int64(resp.GetOrder().GetVersion()) >= version, nil
}

func (c *client) requestID(i int64) string { return fmt.Sprintf("chaos-%s-%d", c.runID, i) }

func (c *client) failed(op string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures = append(c.failures, failure{at: time.Now(), op: op, code: status.Code(err).String()})
}

func (c *client) retry() []backoff.RetryOption {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 100*time.Millisecond, 2*time.Second
	return []backoff.RetryOption{backoff.WithBackOff(b), backoff.WithMaxElapsedTime(c.retryFor)}
}

// permanent reports whether retrying cannot help: the request itself is
// refused, or its caller is (a token the services do not accept would
// otherwise look like a long outage).
func permanent(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.AlreadyExists, codes.NotFound, codes.Unauthenticated, codes.PermissionDenied:
		return true
	}
	return false
}

// one places order i, changes a share of them, and hands every confirmed
// version to the readers.
func (c *client) one(ctx context.Context, i int64) error {
	o := &order{requestID: c.requestID(i), i: i, started: time.Now()}
	no, err := backoff.Retry(ctx, func() (int64, error) {
		no, err := c.place(ctx, o.requestID, i)
		if err != nil {
			c.failed("place", err)
			if permanent(err) {
				return 0, backoff.Permanent(err)
			}
			return 0, err
		}
		return no, nil
	}, c.retry()...)
	if err != nil {
		c.mu.Lock()
		c.gaveUp = append(c.gaveUp, o.requestID)
		c.mu.Unlock()
		return fmt.Errorf("placing %s: %w", o.requestID, err)
	}
	o.no, o.confirmed, o.shard = no, time.Now(), int(no%int64(c.shards))
	c.confirm(o, 1)
	c.mu.Lock()
	c.orders = append(c.orders, o)
	c.mu.Unlock()

	if r := rand.Float64(); r < c.changeShare {
		target := orderv1.Order_ACCEPTED
		if r < c.changeShare/2 {
			target = orderv1.Order_CANCELLED
		}
		v, err := c.change(ctx, o, target)
		if err != nil {
			return err
		}
		c.confirm(o, v)
		c.mu.Lock()
		c.changes++
		c.mu.Unlock()
	}
	return nil
}

// change moves the order to target. A call that failed may have been
// applied (the answer was lost), so the client reads the order from
// order-command before it tries again.
func (c *client) change(ctx context.Context, o *order, target orderv1.Order_Status) (int64, error) {
	no := o.no
	return backoff.Retry(ctx, func() (int64, error) {
		v, err := c.changeOnce(ctx, o, target)
		if err == nil {
			return v, nil
		}
		c.failed("change", err)
		rctx, err2 := c.asUser(ctx, o.i)
		if err2 != nil {
			return 0, backoff.Permanent(err2)
		}
		rctx, cancel := context.WithTimeout(rctx, 10*time.Second)
		defer cancel()
		got, gerr := c.command.GetOrder(rctx, &orderv1.GetOrderRequest{OrderNo: no})
		if gerr != nil {
			c.failed("change", gerr)
			if code := status.Code(gerr); code == codes.Unauthenticated || code == codes.PermissionDenied {
				return 0, backoff.Permanent(gerr) // the caller is refused: no outage to wait out
			}
			return 0, err
		}
		if got.GetOrder().GetStatus() == target {
			return int64(got.GetOrder().GetVersion()), nil
		}
		if status.Code(err) == codes.FailedPrecondition || permanent(err) {
			return 0, backoff.Permanent(fmt.Errorf("order %d is %s: %w", no, got.GetOrder().GetStatus(), err))
		}
		return 0, err
	}, c.retry()...)
}

func (c *client) confirm(o *order, version int64) {
	v := &visit{o: o, version: version, confirmedAt: time.Now()}
	c.mu.Lock()
	o.visits = append(o.visits, v)
	c.visits = append(c.visits, v)
	c.mu.Unlock()
	c.queue <- v
}

// read checks confirmed versions through the query API until each is
// visible, with n readers.
func (c *client) read(ctx context.Context, n int) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				var v *visit
				select {
				case <-ctx.Done():
					return
				case v = <-c.queue:
				}
				visible, err := c.readAt(ctx, v.o, v.version)
				if visible {
					c.mu.Lock()
					v.observedAt = time.Now()
					c.mu.Unlock()
					continue
				}
				if err != nil && !errors.Is(ctx.Err(), context.Canceled) {
					c.failed("read", err)
				}
				// Not yet (the server already waited for it) or the read
				// side is down: back in the queue after a short pause.
				go func() {
					select {
					case <-ctx.Done():
					case <-time.After(250 * time.Millisecond):
						c.queue <- v
					}
				}()
			}
		})
	}
	return &wg
}

// unseen is how many versions confirmed at or before t (and not in skip)
// the read side has not shown yet.
func (c *client) unseen(t time.Time, skip map[*visit]bool) []*visit {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*visit
	for _, v := range c.visits {
		if v.observedAt.IsZero() && !v.confirmedAt.After(t) && !skip[v] {
			out = append(out, v)
		}
	}
	return out
}

// lastObserved is the latest time any version confirmed at or before t
// was first seen.
func (c *client) lastObserved(t time.Time, skip map[*visit]bool) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var last time.Time
	for _, v := range c.visits {
		if !v.confirmedAt.After(t) && !skip[v] && v.observedAt.After(last) {
			last = v.observedAt
		}
	}
	return last
}

// last is the order's last confirmed version.
func (c *client) last(o *order) *visit {
	c.mu.Lock()
	defer c.mu.Unlock()
	return o.visits[len(o.visits)-1]
}

// sweep reads every order at its last confirmed version through the query
// API with n readers, again for those that are not visible until deadline,
// and returns the ones still not visible. It reads everything again because
// a version once shown can still be lost (a read store that forgets on a
// crash what it acknowledged).
func (c *client) sweep(ctx context.Context, n int, orders []*order, deadline time.Time) []*order {
	for {
		todo := make(chan *order)
		var mu sync.Mutex
		var left []*order
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				for o := range todo {
					visible, err := c.readAt(ctx, o, c.last(o).version)
					if !visible {
						if err != nil {
							c.failed("read", err)
						}
						mu.Lock()
						left = append(left, o)
						mu.Unlock()
					}
				}
			})
		}
		for _, o := range orders {
			todo <- o
		}
		close(todo)
		wg.Wait()
		if len(left) == 0 || ctx.Err() != nil || time.Now().After(deadline) {
			return left
		}
		orders = left
		pause(ctx, time.Second)
	}
}
