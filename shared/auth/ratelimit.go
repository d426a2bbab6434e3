package auth

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/time/rate"

	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
)

// LimiterConfig is the rate every caller may call the limited methods at.
type LimiterConfig struct {
	// Rate is the calls per second one caller may make, on average
	// (default 5).
	Rate float64
	// Burst is how many calls one caller may make at once after it has
	// been idle (default 20).
	Burst int
	// Methods are the limited methods' full names (default PlaceOrder).
	// Each caller has one bucket over all of them.
	Methods []string
	// MaxCallers bounds the callers remembered (default 100000); beyond,
	// the least recently seen is forgotten.
	MaxCallers int
	// IdleTTL is how long an idle caller is remembered (default 10m, at
	// least the time an empty bucket takes to fill): a caller forgotten
	// comes back to a full bucket, which it would have had by then anyway.
	IdleTTL time.Duration
	// Now is the clock the buckets fill by (default time.Now).
	Now func() time.Time
}

func (c LimiterConfig) withDefaults() (LimiterConfig, error) {
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) || c.Burst < 0 || c.MaxCallers < 0 || c.IdleTTL < 0 {
		return c, errors.New("auth: the rate, burst, caller bound and idle time must not be negative")
	}
	if c.Rate == 0 {
		c.Rate = 5
	}
	if c.Burst == 0 {
		c.Burst = 20
	}
	if len(c.Methods) == 0 {
		c.Methods = []string{orderv1.OrderCommandService_PlaceOrder_FullMethodName}
	}
	if c.MaxCallers == 0 {
		c.MaxCallers = 100_000
	}
	if c.IdleTTL == 0 {
		c.IdleTTL = 10 * time.Minute
	}
	if fill := time.Duration(float64(c.Burst) / c.Rate * float64(time.Second)); c.IdleTTL < fill {
		return c, fmt.Errorf("auth: the idle time %s is shorter than an empty bucket takes to fill (%s)", c.IdleTTL, fill)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// Limiter is a token bucket per caller identity (x/time/rate), kept in a
// bounded LRU whose entries expire when idle, so memory stays bounded
// however many callers come.
type Limiter struct {
	cfg LimiterConfig

	mu      sync.Mutex // makes get-or-create one step
	buckets *expirable.LRU[string, *rate.Limiter]
}

// NewLimiter returns the limiter of cfg.
func NewLimiter(cfg LimiterConfig) (*Limiter, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Limiter{cfg: cfg, buckets: expirable.NewLRU[string, *rate.Limiter](cfg.MaxCallers, nil, cfg.IdleTTL)}, nil
}

// Limits reports whether method is limited.
func (l *Limiter) Limits(method string) bool { return slices.Contains(l.cfg.Methods, method) }

// Allow takes one call from identity's bucket; when the bucket is empty it
// returns false and how long until the next call would be allowed.
func (l *Limiter) Allow(identity string) (bool, time.Duration) {
	l.mu.Lock()
	bucket, ok := l.buckets.Get(identity)
	if !ok {
		bucket = rate.NewLimiter(rate.Limit(l.cfg.Rate), l.cfg.Burst)
	}
	// Adding again renews the entry's expiry: it expires when idle, not
	// when old, or a busy caller would get a full bucket every IdleTTL.
	l.buckets.Add(identity, bucket)
	l.mu.Unlock()

	now := l.cfg.Now()
	r := bucket.ReserveN(now, 1)
	if !r.OK() {
		return false, l.cfg.IdleTTL
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}
