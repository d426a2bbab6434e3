package shard

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"maps"
	"net"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// PoolConfig sizes and bounds the connection pool of every shard.
type PoolConfig struct {
	// MaxOpenConns caps connections per shard.
	MaxOpenConns int `env:"MAX_OPEN_CONNS" envDefault:"64"`
	// MaxIdleConns keeps this many connections warm per shard.
	MaxIdleConns int `env:"MAX_IDLE_CONNS" envDefault:"64"`
	// ConnMaxLifetime recycles connections so that a restarted shard's pool
	// renews itself.
	ConnMaxLifetime time.Duration `env:"CONN_MAX_LIFETIME" envDefault:"5m"`
	// DialTimeout bounds connecting to a shard: a shard that is down fails
	// the requests routed to it within this time instead of hanging.
	DialTimeout time.Duration `env:"DIAL_TIMEOUT" envDefault:"1s"`
	// IOTimeout bounds one read or write on a connection: the backstop for
	// work that does not go through Do, Call, InTx or ExecAtomic.
	IOTimeout time.Duration `env:"IO_TIMEOUT" envDefault:"10s"`
	// StatementTimeout bounds one call into a shard through Do, Call or
	// ExecAtomic (a statement, or one round trip of several). A shard that
	// does not answer within it fails the call as unavailable and counts
	// against its circuit breaker. Well under a second, so that a hung shard
	// is answered for before clients give up. Zero means the default.
	StatementTimeout time.Duration `env:"STATEMENT_TIMEOUT" envDefault:"800ms"`
	// TxTimeout bounds a whole transaction (InTx): getting a connection,
	// its statements and the commit. Zero means the default.
	TxTimeout time.Duration `env:"TX_TIMEOUT" envDefault:"900ms"`
	// BreakerFailures is how many consecutive calls without an answer open
	// a shard's circuit breaker. Zero means the default.
	BreakerFailures uint32 `env:"BREAKER_FAILURES" envDefault:"5"`
	// BreakerQuiet is how long the shard must have answered nothing before
	// those failures open its breaker: a loaded shard that stalls for a
	// moment (each call past its deadline still fails) is not shed for a
	// whole open period, a hung one is. Zero means the default.
	BreakerQuiet time.Duration `env:"BREAKER_QUIET" envDefault:"1s"`
	// BreakerOpenTimeout is how long an open breaker fails calls at once
	// before it lets probes through. Zero means the default.
	BreakerOpenTimeout time.Duration `env:"BREAKER_OPEN_TIMEOUT" envDefault:"1s"`
	// BreakerProbes is how many calls a half-open breaker lets through; that
	// many successes close it, one failure opens it again. Zero means the
	// default.
	BreakerProbes uint32 `env:"BREAKER_PROBES" envDefault:"1"`
}

// Defaults of the fault-handling settings, used where they are zero (a
// PoolConfig built in code, as tools and tests do, rather than read from the
// environment).
const (
	DefaultStatementTimeout   = 800 * time.Millisecond
	DefaultTxTimeout          = 900 * time.Millisecond
	DefaultBreakerFailures    = 5
	DefaultBreakerOpenTimeout = time.Second
	DefaultBreakerQuiet       = time.Second
	DefaultBreakerProbes      = 1
)

// WithDefaults fills the zero fault-handling settings with their defaults.
func (c PoolConfig) WithDefaults() PoolConfig {
	if c.StatementTimeout == 0 {
		c.StatementTimeout = DefaultStatementTimeout
	}
	if c.TxTimeout == 0 {
		c.TxTimeout = DefaultTxTimeout
	}
	if c.BreakerFailures == 0 {
		c.BreakerFailures = DefaultBreakerFailures
	}
	if c.BreakerOpenTimeout == 0 {
		c.BreakerOpenTimeout = DefaultBreakerOpenTimeout
	}
	if c.BreakerQuiet == 0 {
		c.BreakerQuiet = DefaultBreakerQuiet
	}
	if c.BreakerProbes == 0 {
		c.BreakerProbes = DefaultBreakerProbes
	}
	return c
}

// Validate checks the pool settings (zero fault-handling settings stand for
// their defaults, see WithDefaults).
func (c PoolConfig) Validate() error {
	switch {
	case c.MaxOpenConns < 1:
		return errors.New("shard pool: MAX_OPEN_CONNS must be at least 1")
	case c.MaxIdleConns < 0 || c.MaxIdleConns > c.MaxOpenConns:
		return errors.New("shard pool: MAX_IDLE_CONNS must be between 0 and MAX_OPEN_CONNS")
	case c.DialTimeout <= 0 || c.IOTimeout <= 0:
		return errors.New("shard pool: DIAL_TIMEOUT and IO_TIMEOUT must be positive")
	case c.StatementTimeout < 0 || c.TxTimeout < 0 || c.BreakerOpenTimeout < 0 || c.BreakerQuiet < 0:
		return errors.New("shard pool: STATEMENT_TIMEOUT, TX_TIMEOUT, BREAKER_OPEN_TIMEOUT and BREAKER_QUIET must not be negative")
	case c.TxTimeout > 0 && c.TxTimeout < c.StatementTimeout:
		return errors.New("shard pool: TX_TIMEOUT must be at least STATEMENT_TIMEOUT")
	}
	return nil
}

// Pools holds one *sql.DB per shard of a topology. The topology can grow
// while it is in use (Extend): a shard added to the system gets its pool,
// and every caller of Topology sees the new epoch from then on.
type Pools struct {
	cfg  PoolConfig
	opts openOptions

	mu       sync.RWMutex
	topology Topology
	dbs      map[string]*sql.DB

	breakers breakers
}

// Open creates a pool per shard. It does not connect: use Ping to check
// reachability, so that a service can start while one shard is down.
func Open(t Topology, cfg PoolConfig, opts ...Option) (*Pools, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	p := &Pools{cfg: cfg, topology: t, dbs: make(map[string]*sql.DB, len(t.Shards))}
	for _, o := range opts {
		o(&p.opts)
	}
	for _, s := range t.Shards {
		db, err := p.opts.openDB(s.DSN, s.Name, cfg)
		if err != nil {
			_ = p.Close()
			return nil, fmt.Errorf("shard %s: %w", s.Name, err)
		}
		p.dbs[s.Name] = db
	}
	return p, nil
}

// OpenDB opens one MySQL pool with the settings every orderflow connection
// uses: UTC times parsed into time.Time, client-side parameter interpolation
// (one round trip per statement) and the configured timeouts.
func OpenDB(dsn string, cfg PoolConfig) (*sql.DB, error) {
	return openOptions{}.openDB(dsn, "", cfg)
}

func (o openOptions) openDB(dsn, shardName string, cfg PoolConfig) (*sql.DB, error) {
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("parsing dsn: %w", err)
	}
	mc.ParseTime = true
	mc.Loc = time.UTC
	mc.InterpolateParams = true
	// The columns hold microseconds. A time.Time interpolated with
	// nanoseconds is a literal MariaDB cannot use as an index range bound: the
	// relay's cleanup (published_at < ?) then read every published row and
	// stalled its shard for seconds a minute (measured at 600,000 rows).
	if err := mc.Apply(mysql.TimeTruncate(time.Microsecond)); err != nil {
		return nil, fmt.Errorf("dsn options: %w", err)
	}
	// Batches (see Batch) send several statements in one round trip. Values
	// are always interpolated with escaping, never concatenated.
	mc.MultiStatements = true
	mc.Timeout = cfg.DialTimeout
	mc.ReadTimeout = cfg.IOTimeout
	mc.WriteTimeout = cfg.IOTimeout
	if mc.Params == nil {
		mc.Params = map[string]string{}
	}
	mc.Params["time_zone"] = "'+00:00'"
	connector, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("creating connector: %w", err)
	}
	db := o.openConnector(connector, shardName)
	db.SetMaxOpenConns(cfg.MaxOpenConns)
	db.SetMaxIdleConns(cfg.MaxIdleConns)
	db.SetConnMaxLifetime(cfg.ConnMaxLifetime)
	return db, nil
}

// Topology is the current topology.
func (p *Pools) Topology() Topology {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.topology
}

// DB returns the pool of a shard.
func (p *Pools) DB(name string) (*sql.DB, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	db, ok := p.dbs[name]
	if !ok {
		return nil, fmt.Errorf("unknown shard %q", name)
	}
	return db, nil
}

// Extend switches to t, a successor of the current topology (see
// Topology.Extends: shards and epochs added, the oldest epochs possibly
// retired; orders keep routing where they are); it opens pools for new
// shards. It reports whether anything changed.
func (p *Pools) Extend(t Topology) (bool, error) {
	if err := t.Validate(); err != nil {
		return false, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := t.Extends(p.topology); err != nil {
		return false, err
	}
	if len(t.Shards) == len(p.topology.Shards) && len(t.Epochs) == len(p.topology.Epochs) &&
		t.Epochs[0].FirstOrderNo == p.topology.Epochs[0].FirstOrderNo {
		return false, nil
	}
	for _, s := range t.Shards {
		if _, ok := p.dbs[s.Name]; ok {
			continue
		}
		db, err := p.opts.openDB(s.DSN, s.Name, p.cfg)
		if err != nil {
			return false, fmt.Errorf("shard %s: %w", s.Name, err)
		}
		p.dbs[s.Name] = db
	}
	p.topology = t
	return true, nil
}

// Ping checks every shard and returns each one's error (nil when reachable).
func (p *Pools) Ping(ctx context.Context) map[string]error {
	p.mu.RLock()
	dbs := maps.Clone(p.dbs)
	p.mu.RUnlock()
	out := make(map[string]error, len(dbs))
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(dbs))
	for name, db := range dbs {
		go func() {
			results <- result{name: name, err: Classify(name, db.PingContext(ctx))}
		}()
	}
	for range dbs {
		r := <-results
		out[r.name] = r.err
	}
	return out
}

// Close closes every pool.
func (p *Pools) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, db := range p.dbs {
		errs = append(errs, db.Close())
	}
	return errors.Join(errs...)
}

// InTx runs fn in a transaction on one shard and commits it when fn returns
// nil. The transaction is bound to that shard's pool, so nothing inside it
// can touch another shard. It goes through the shard's circuit breaker, and
// fn's statements must use the context it is given: it ends after
// TxTimeout, so that a shard that stops answering mid-transaction fails the
// call in time. Errors are classified, so a shard that cannot be reached, or
// does not answer in time, yields an error that Is ErrUnavailable.
//
// isolation is explicit because it costs: any level but sql.LevelDefault
// is one more round trip (SET TRANSACTION). Pollers use READ COMMITTED to
// avoid gap locks; writers that only insert, or that lock the rows they read
// (SELECT ... FOR UPDATE reads the latest version at any level), use the
// default.
func (p *Pools) InTx(ctx context.Context, shard string, isolation sql.IsolationLevel, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return p.call(ctx, shard, p.cfg.TxTimeout, func(ctx context.Context) error {
		conn, err := p.Conn(ctx, shard)
		if err != nil {
			return err
		}
		defer conn.Close()
		tx, err := conn.BeginTx(ctx, &sql.TxOptions{Isolation: isolation})
		if err != nil {
			return fmt.Errorf("beginning transaction: %w", err)
		}
		if err := fn(ctx, tx); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("committing: %w", err)
		}
		return nil
	})
}

// ErrUnavailable is matched (errors.Is) by every error that means a shard
// could not be reached or dropped the connection.
var ErrUnavailable = errors.New("shard unavailable")

// UnavailableError says which shard could not be reached and why.
type UnavailableError struct {
	Shard string
	Err   error
	// RetryAfter is when trying the shard again makes sense: the rest of
	// its breaker's open period, or a second (zero when not known).
	RetryAfter time.Duration
	// BreakerOpen is true when the call was not tried at all because the
	// shard's circuit breaker was open (or probing).
	BreakerOpen bool
	// Busy is true when the call waited for a connection of this process's
	// pool until its deadline while the shard answered other calls: the
	// shard is loaded, not down, and its breaker does not count the call.
	Busy bool
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("shard %s unavailable: %v", e.Shard, e.Err)
}

// Unwrap exposes the cause.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Classify wraps connection-level failures as *UnavailableError and leaves
// everything else (SQL errors from a live server, cancellations, domain
// errors) as it is.
func Classify(shard string, err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	if isConnectionError(err) {
		return &UnavailableError{Shard: shard, Err: err}
	}
	return err
}

// serverGoneCodes are MySQL server errors that mean the server is going away
// or refusing connections, not that the statement was wrong.
var serverGoneCodes = map[uint16]bool{
	1040: true, // ER_CON_COUNT_ERROR: too many connections
	1053: true, // ER_SERVER_SHUTDOWN
	1927: true, // ER_CONNECTION_KILLED (MariaDB)
	4031: true, // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8)
}

func isConnectionError(err error) bool {
	// The caller gave up (its context's error is also a net.Error, with
	// Timeout): that says nothing about the shard. A shard that does not
	// answer within the call's own deadline is told apart in Pools.call.
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return serverGoneCodes[me.Number]
	}
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.Is(err, mysql.ErrInvalidConn),
		errors.Is(err, mysql.ErrMalformPkt),
		errors.Is(err, driver.ErrBadConn),
		errors.Is(err, sql.ErrConnDone),
		errors.As(err, &oe),
		errors.As(err, &ne):
		return true
	}
	return false
}
