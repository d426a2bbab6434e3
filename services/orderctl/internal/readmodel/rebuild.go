package readmodel

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/orderflow/orderflow/shared/shard"
)

// Config tunes a rebuild.
type Config struct {
	// Batch is how many orders are read and projected at a time. Default 500.
	Batch int
	// Rate caps documents per second so live traffic keeps its latency
	// (0: no cap).
	Rate float64
}

func (c Config) withDefaults() (Config, error) {
	if c.Batch == 0 {
		c.Batch = 500
	}
	if c.Batch < 1 || c.Rate < 0 {
		return c, errors.New("readmodel: Batch must be positive and Rate not negative")
	}
	return c, nil
}

// Options select what a rebuild covers.
type Options struct {
	// Since limits it to orders placed at or after (zero: every order).
	Since time.Time
	// Shards limits it to these shards (empty: every shard).
	Shards []string
	// Resume continues from the checkpoint of an interrupted run with the
	// same Since and Shards; without it a run starts over.
	Resume bool
}

// key names the selection a checkpoint belongs to, so a resumed run covers
// the same orders as the one it continues.
func (o Options) key() string {
	since := ""
	if !o.Since.IsZero() {
		since = o.Since.UTC().Format(time.RFC3339Nano)
	}
	shards := slices.Clone(o.Shards)
	slices.Sort(shards)
	return "since=" + since + ";shards=" + strings.Join(shards, ",")
}

// Hooks are told about a run's progress; every field may be nil.
type Hooks struct {
	// Counted reports how many orders the run will go through (on resume,
	// those not done yet).
	Counted func(total int64)
	// Batch runs after each batch is applied and checkpointed.
	Batch func(shard string, orderNos []int64)
}

// Report counts what a run did.
type Report struct {
	// Orders read from the shards (or given).
	Orders int
	// Projected documents written; Current already at the shard's version.
	Projected, Current int
	// External events published.
	External int
	// Missing orders are not on their shard (purged or never placed).
	Missing []int64
	// Resumed shards continued from a checkpoint, with the order number
	// they continued after.
	Resumed map[string]int64
}

// Rebuilder re-projects orders from the shards.
type Rebuilder struct {
	pools       *shard.Pools
	applier     *Applier
	checkpoints *Checkpoints
	cfg         Config
}

// NewRebuilder returns a rebuilder reading from pools and applying through
// applier, with its checkpoints in checkpoints.
func NewRebuilder(pools *shard.Pools, applier *Applier, checkpoints *Checkpoints, cfg Config) (*Rebuilder, error) {
	if pools == nil || applier == nil || checkpoints == nil {
		return nil, errors.New("readmodel: pools, applier and checkpoints are required")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Rebuilder{pools: pools, applier: applier, checkpoints: checkpoints, cfg: cfg}, nil
}

func (r *Rebuilder) limiter() *rate.Limiter {
	if r.cfg.Rate == 0 {
		return rate.NewLimiter(rate.Inf, r.cfg.Batch)
	}
	return rate.NewLimiter(rate.Limit(r.cfg.Rate), r.cfg.Batch)
}

// Orders re-projects exactly the given orders, in batches, without a
// checkpoint: the path verify's repair and the --orders rebuild take.
func (r *Rebuilder) Orders(ctx context.Context, orderNos []int64, hooks Hooks) (Report, error) {
	rep := Report{}
	if hooks.Counted != nil {
		hooks.Counted(int64(len(orderNos)))
	}
	lim := r.limiter()
	for batch := range slices.Chunk(orderNos, r.cfg.Batch) {
		if err := r.apply(ctx, lim, batch, &rep); err != nil {
			return rep, err
		}
		if hooks.Batch != nil {
			hooks.Batch("", batch)
		}
	}
	return rep, nil
}

// Run re-projects every selected order, shard by shard in order_no order,
// checkpointing each shard's last order number after every batch.
func (r *Rebuilder) Run(ctx context.Context, opts Options, hooks Hooks) (Report, error) {
	rep := Report{Resumed: map[string]int64{}}
	names := r.pools.Topology().Names()
	for _, s := range opts.Shards {
		if !slices.Contains(names, s) {
			return rep, fmt.Errorf("no shard %q in the topology (%s)", s, strings.Join(names, ", "))
		}
	}
	if len(opts.Shards) > 0 {
		names = opts.Shards
	}
	key := opts.key()
	marks := map[string]Mark{}
	if opts.Resume {
		var err error
		if marks, err = r.checkpoints.Load(ctx, key); err != nil {
			return rep, err
		}
	} else if err := r.checkpoints.Reset(ctx); err != nil {
		return rep, err
	}
	var total int64
	for _, name := range names {
		if marks[name].Done {
			continue
		}
		n, err := r.count(ctx, name, marks[name].Last, opts.Since)
		if err != nil {
			return rep, err
		}
		total += n
	}
	if hooks.Counted != nil {
		hooks.Counted(total)
	}
	lim := r.limiter()
	for _, name := range names {
		m := marks[name]
		if m.Done {
			continue
		}
		if m.Last > 0 {
			rep.Resumed[name] = m.Last
		}
		if err := r.shard(ctx, name, key, m.Last, opts.Since, lim, &rep, hooks); err != nil {
			return rep, fmt.Errorf("rebuilding %s: %w", name, err)
		}
	}
	return rep, nil
}

func (r *Rebuilder) shard(ctx context.Context, name, key string, after int64, since time.Time, lim *rate.Limiter, rep *Report, hooks Hooks) error {
	db, err := r.pools.DB(name)
	if err != nil {
		return err
	}
	query, args := pageQuery(after, since)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		nos, err := page(ctx, db, query, append(args, r.cfg.Batch))
		if err != nil {
			return shard.Classify(name, fmt.Errorf("reading order numbers: %w", err))
		}
		if len(nos) == 0 {
			return r.checkpoints.Save(ctx, name, key, Mark{Last: args[0].(int64), Done: true})
		}
		if err := r.apply(ctx, lim, nos, rep); err != nil {
			return err
		}
		args[0] = nos[len(nos)-1]
		if err := r.checkpoints.Save(ctx, name, key, Mark{Last: nos[len(nos)-1]}); err != nil {
			return err
		}
		if hooks.Batch != nil {
			hooks.Batch(name, nos)
		}
	}
}

func (r *Rebuilder) apply(ctx context.Context, lim *rate.Limiter, nos []int64, rep *Report) error {
	if err := lim.WaitN(ctx, len(nos)); err != nil {
		return fmt.Errorf("waiting for the rate limit: %w", err)
	}
	res, err := r.applier.Apply(ctx, nos)
	if err != nil {
		return err
	}
	rep.Orders += len(nos)
	rep.Projected += res.Projected
	rep.Current += res.Current
	rep.External += res.External
	rep.Missing = append(rep.Missing, res.Missing...)
	return nil
}

// pageQuery selects the next page of order numbers after args[0].
func pageQuery(after int64, since time.Time) (string, []any) {
	conds, args := []string{"order_no > ?"}, []any{after}
	if !since.IsZero() {
		conds, args = append(conds, "placed_at >= ?"), append(args, since.UTC())
	}
	return "SELECT order_no FROM orders WHERE " + strings.Join(conds, " AND ") + " ORDER BY order_no LIMIT ?", args
}

func (r *Rebuilder) count(ctx context.Context, name string, after int64, since time.Time) (int64, error) {
	db, err := r.pools.DB(name)
	if err != nil {
		return 0, err
	}
	query, args := pageQuery(after, since)
	query = strings.Replace(strings.TrimSuffix(query, " ORDER BY order_no LIMIT ?"), "SELECT order_no", "SELECT COUNT(*)", 1)
	var n int64
	if err := db.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		return 0, shard.Classify(name, fmt.Errorf("counting orders: %w", err))
	}
	return n, nil
}

func page(ctx context.Context, db *sql.DB, query string, args []any) ([]int64, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var no int64
		if err := rows.Scan(&no); err != nil {
			return nil, err
		}
		out = append(out, no)
	}
	return out, rows.Err()
}
