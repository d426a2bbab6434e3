package shard

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// Every call into a shard goes through Pools.call: it bounds the call with a
// deadline, so that a shard that stops answering (a frozen process, a
// network that drops packets) fails the call within the deadline instead of
// holding the caller for the driver's read timeout, and it counts the
// outcome in the shard's circuit breaker. After BreakerFailures consecutive
// calls that got no answer, once the shard has answered nothing for
// BreakerQuiet, the breaker opens: calls routed to that shard
// then fail at once with an *UnavailableError carrying a retry-after hint,
// and nothing queues up behind the hung shard. After BreakerOpenTimeout the
// breaker lets BreakerProbes calls through; when they succeed the shard is
// back in.

// errNoAnswer is the cause of a call's context when the call's own deadline
// (statement or transaction timeout) expired: it tells a hung shard from a
// caller that gave up.
var errNoAnswer = errors.New("no answer within the deadline")

// minRetryAfter is the smallest retry-after hint: HTTP's Retry-After counts
// whole seconds.
const minRetryAfter = time.Second

// breaker is one shard's circuit breaker and the state its metrics report.
type breaker struct {
	cb          *gobreaker.TwoStepCircuitBreaker[struct{}]
	openTimeout time.Duration
	// openedAt is when the breaker last opened (unix nanoseconds).
	openedAt atomic.Int64
	// down is true while the last counted call got no answer.
	down     atomic.Bool
	rejected atomic.Uint64
	// answeredAt is when a call last got an answer from the shard (unix
	// nanoseconds): a call that waited for a connection meanwhile waited
	// behind a shard that works.
	answeredAt atomic.Int64
}

func newBreaker(name string, cfg PoolConfig) *breaker {
	b := &breaker{openTimeout: cfg.BreakerOpenTimeout}
	failures, quiet := cfg.BreakerFailures, cfg.BreakerQuiet
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        name,
		MaxRequests: cfg.BreakerProbes,
		Timeout:     cfg.BreakerOpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= failures && time.Since(time.Unix(0, b.answeredAt.Load())) >= quiet
		},
		OnStateChange: func(_ string, _, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				b.openedAt.Store(time.Now().UnixNano())
			}
		},
		IsSuccessful: func(err error) bool { return !IsFailure(err) },
		IsExcluded:   isExcluded,
	})
	return b
}

// retryAfter is how long a caller should wait before trying the shard again:
// the rest of the open period while the breaker is open, else the minimum.
func (b *breaker) retryAfter() time.Duration {
	if b.cb.State() != gobreaker.StateOpen {
		return minRetryAfter
	}
	left := time.Until(time.Unix(0, b.openedAt.Load()).Add(b.openTimeout))
	return max(left.Round(time.Second), minRetryAfter)
}

// IsFailure tells whether err means that the shard could not be reached or
// did not answer in time (it counts against the shard's circuit breaker).
// Answers from a live server are not failures, whatever they say: duplicate
// keys, lock wait timeouts, rows not found, business rules; nor is a call
// that found the shard's pool busy (see Pools.Conn).
func IsFailure(err error) bool {
	return err != nil && errors.Is(err, ErrUnavailable) && !isBusy(err)
}

// isBusy tells a call that waited for a free connection of its own process's
// pool until its deadline.
func isBusy(err error) bool {
	var ue *UnavailableError
	return errors.As(err, &ue) && ue.Busy
}

// isExcluded tells calls that say nothing about the shard: the caller
// cancelled, its own deadline (shorter than the call's) expired, or every
// connection of the pool was in use until the deadline. A busy pool is
// local queueing (more callers than connections), not a shard that stopped
// answering: counting it would open the breaker of a healthy shard under
// load and shed what it could still serve. A hung shard is still caught by
// the calls that hold its connections, whose statements time out.
func isExcluded(err error) bool {
	if isBusy(err) {
		return true
	}
	if IsFailure(err) {
		return false
	}
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// waitedOut is the error of callers that spent their whole deadline
// waiting for their turn, before their call started: busy, as a wait for a
// connection is, if the shard answered the calls ahead of them meanwhile;
// else the shard did not answer.
func (b *breaker) waitedOut(shard string, since time.Time, timeout time.Duration) error {
	if b.answeredAt.Load() > since.UnixNano() {
		return &UnavailableError{Shard: shard, Busy: true, RetryAfter: minRetryAfter,
			Err: fmt.Errorf("%w: waited for the calls ahead, which the shard answered", errBusy)}
	}
	return &UnavailableError{Shard: shard, Err: fmt.Errorf("%w (%s): waited for the calls ahead, which got none", errNoAnswer, timeout)}
}

// errBusy is the cause of a busy pool's error.
var errBusy = errors.New("no free connection within the deadline")

// Conn takes a connection of the shard's pool for a call that runs through
// Do, Call or InTx (ctx is the call's). When the call's deadline expires
// waiting for it while the shard answered other calls, the pool was busy
// (more callers than connections): the error is an *UnavailableError
// marked Busy, the caller gets UNAVAILABLE with a retry-after hint, and the
// shard's breaker does not count it. When the shard answered nothing
// meanwhile, the wait was for a shard that stopped answering (a connection
// being dialled to a frozen server counts as in use too): a failure like
// any other.
func (p *Pools) Conn(ctx context.Context, shard string) (*sql.Conn, error) {
	db, err := p.DB(shard)
	if err != nil {
		return nil, err
	}
	waitFrom := time.Now().UnixNano()
	conn, err := db.Conn(ctx)
	if err == nil {
		return conn, nil
	}
	if errors.Is(context.Cause(ctx), errNoAnswer) && p.breakers.get(shard, p.cfg).answeredAt.Load() > waitFrom {
		return nil, &UnavailableError{Shard: shard, Busy: true, RetryAfter: minRetryAfter,
			Err: fmt.Errorf("%w: the shard answered other calls meanwhile", errBusy)}
	}
	return nil, fmt.Errorf("getting a connection: %w", err)
}

// breakers holds one breaker per shard, created on first use, so that shards
// added by Extend get theirs without Open and Extend knowing about them.
type breakers struct {
	mu      sync.Mutex
	byShard map[string]*breaker
}

func (bs *breakers) get(name string, cfg PoolConfig) *breaker {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if bs.byShard == nil {
		bs.byShard = map[string]*breaker{}
	}
	b, ok := bs.byShard[name]
	if !ok {
		b = newBreaker(name, cfg)
		bs.byShard[name] = b
	}
	return b
}

// Do runs fn with the shard's pool through the shard's circuit breaker, its
// context bounded by StatementTimeout. Use it for one statement or a few
// quick ones; everything fn reads must be read before it returns (rows are
// closed when its context ends). Errors are classified (see Classify); a
// shard whose breaker is open fails at once with an *UnavailableError.
func (p *Pools) Do(ctx context.Context, shard string, fn func(ctx context.Context, db *sql.DB) error) error {
	db, err := p.DB(shard)
	if err != nil {
		return err
	}
	return p.call(ctx, shard, p.cfg.StatementTimeout, func(ctx context.Context) error { return fn(ctx, db) })
}

// Call is Do for work on a connection the caller holds (the relay's lock
// connection, for example): fn runs through the shard's breaker with its
// context bounded by StatementTimeout, and must use that context.
func (p *Pools) Call(ctx context.Context, shard string, fn func(ctx context.Context) error) error {
	return p.call(ctx, shard, p.cfg.StatementTimeout, fn)
}

// call is the one path into a shard: breaker, deadline, classification.
func (p *Pools) call(ctx context.Context, shard string, timeout time.Duration, fn func(ctx context.Context) error) error {
	return p.callFor(ctx, shard, 1, time.Now(), timeout, fn)
}

// callFor is call on behalf of calls callers at once (a group commit), the
// first of whom asked at since. The deadline counts from since: a caller's
// wait for its turn counts against it, as a wait for a connection does, so
// a shard that stops answering still answers every caller within the
// timeout of its call. The breaker counts the outcome once per caller, so
// that its thresholds mean calls however they were grouped.
func (p *Pools) callFor(ctx context.Context, shard string, calls int, since time.Time, timeout time.Duration, fn func(ctx context.Context) error) error {
	b := p.breakers.get(shard, p.cfg)
	done, err := b.cb.Allow()
	if err != nil {
		b.rejected.Add(uint64(max(calls, 1)))
		return &UnavailableError{Shard: shard, Err: fmt.Errorf("circuit breaker %s: %w", b.cb.State(), err),
			RetryAfter: b.retryAfter(), BreakerOpen: true}
	}
	dones := []func(error){done}
	for range calls - 1 {
		// A half-open breaker lets only its probes through: the group is
		// then one probe.
		d, err := b.cb.Allow()
		if err != nil {
			break
		}
		dones = append(dones, d)
	}
	deadline := since.Add(timeout)
	callCtx, cancel := context.WithDeadlineCause(ctx, deadline, errNoAnswer)
	noAnswer := false
	if time.Now().Before(deadline) {
		err = fn(callCtx)
		noAnswer = err != nil && errors.Is(context.Cause(callCtx), errNoAnswer)
	} else {
		err = b.waitedOut(shard, since, timeout)
	}
	cancel()
	if noAnswer && !errors.Is(err, ErrUnavailable) {
		// Whatever the driver made of the expired deadline (the context's
		// error, a closed connection), the shard did not answer in time.
		err = &UnavailableError{Shard: shard, Err: fmt.Errorf("%w (%s): %w", errNoAnswer, timeout, err)}
	} else {
		err = Classify(shard, err)
	}
	for _, done := range dones {
		done(err)
	}
	switch {
	case IsFailure(err):
		b.down.Store(true)
		var ue *UnavailableError
		if errors.As(err, &ue) && ue.RetryAfter == 0 {
			ue.RetryAfter = b.retryAfter()
		}
	case err == nil || !isExcluded(err):
		b.down.Store(false)
		b.answeredAt.Store(time.Now().UnixNano())
	}
	return err
}

var (
	breakerStateDesc = prometheus.NewDesc("orderflow_shard_breaker_state",
		"Circuit breaker of the shard: 0 closed, 1 half-open (probing), 2 open (calls fail at once).", []string{"shard"}, nil)
	shardUpDesc = prometheus.NewDesc("orderflow_shard_up",
		"1 while the shard answers (its last call got an answer and its breaker is not open), else 0.", []string{"shard"}, nil)
	breakerRejectedDesc = prometheus.NewDesc("orderflow_shard_breaker_rejected_total",
		"Calls failed at once because the shard's circuit breaker was open or probing.", []string{"shard"}, nil)
)

// Collector reports every shard's breaker state, whether it is up, and the
// calls its breaker rejected; register it with the process's registry.
func (p *Pools) Collector() prometheus.Collector { return poolsCollector{p} }

type poolsCollector struct{ p *Pools }

func (c poolsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- breakerStateDesc
	ch <- shardUpDesc
	ch <- breakerRejectedDesc
}

func (c poolsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, name := range c.p.Topology().Names() {
		b := c.p.breakers.get(name, c.p.cfg)
		state := b.cb.State()
		up := 1.0
		if state == gobreaker.StateOpen || b.down.Load() {
			up = 0
		}
		// gobreaker's states are numbered closed 0, half-open 1, open 2.
		ch <- prometheus.MustNewConstMetric(breakerStateDesc, prometheus.GaugeValue, float64(state), name)
		ch <- prometheus.MustNewConstMetric(shardUpDesc, prometheus.GaugeValue, up, name)
		ch <- prometheus.MustNewConstMetric(breakerRejectedDesc, prometheus.CounterValue, float64(b.rejected.Load()), name)
	}
}
