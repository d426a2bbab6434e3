// Package verify checks, for a window of orders, that nothing was lost on the
// way from the shards to the read side: every outbox row of every order is
// PUBLISHED (FAILED ones are listed with their error), every order's MongoDB
// document carries its latest version, and no order sits on the wrong shard
// for its epoch or on two shards. It streams: orders are read a page at a
// time, so memory stays bounded however large the window.
package verify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orderflow/orderflow/shared/orderdoc"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/sqlrows"
)

// Kinds of mismatch.
const (
	KindWrongShard      = "wrong-shard"
	KindDuplicate       = "on-two-shards"
	KindPending         = "outbox-pending"
	KindFailed          = "outbox-failed"
	KindMissingDocument = "document-missing"
	KindStaleDocument   = "document-stale"
)

// Mismatch is one finding about one order.
type Mismatch struct {
	Kind    string
	Shard   string
	OrderNo int64
	Detail  string
}

func (m Mismatch) String() string {
	return fmt.Sprintf("%-17s %-10s order %d: %s", m.Kind, m.Shard, m.OrderNo, m.Detail)
}

// Window selects orders by placed_at: Since <= placed_at < Until; zero
// values leave that side open.
type Window struct {
	Since, Until time.Time
}

// Report is the outcome.
type Report struct {
	Orders int
	// Counts per kind of mismatch.
	Counts map[string]int
	// First holds the first offenders, up to the limit asked for.
	First []Mismatch
	// Repairable are the orders whose document is missing or stale, all of
	// them (a re-projection fixes exactly these; see Repair).
	Repairable []int64
}

// OK reports whether nothing was found.
func (r Report) OK() bool { return len(r.Counts) == 0 }

// Verifier checks shards against the read side.
type Verifier struct {
	pools    *shard.Pools
	docs     *mongo.Collection
	pageSize int
	keep     int
}

// New returns a verifier reading pageSize orders at a time and keeping the
// first keep mismatches.
func New(pools *shard.Pools, db *mongo.Database, pageSize, keep int) *Verifier {
	return &Verifier{pools: pools, docs: db.Collection(orderdoc.Collection), pageSize: pageSize, keep: keep}
}

// Progress is told after every page.
type Progress func(shard string, orders int)

// Run checks every shard of the topology.
func (v *Verifier) Run(ctx context.Context, w Window, progress Progress) (Report, error) {
	rep := Report{Counts: map[string]int{}}
	add := func(m Mismatch) {
		rep.Counts[m.Kind]++
		if m.Kind == KindMissingDocument || m.Kind == KindStaleDocument {
			rep.Repairable = append(rep.Repairable, m.OrderNo)
		}
		if len(rep.First) < v.keep {
			rep.First = append(rep.First, m)
		}
	}
	for _, name := range v.pools.Topology().Names() {
		if err := v.shard(ctx, name, w, &rep, add, progress); err != nil {
			return rep, fmt.Errorf("verifying %s: %w", name, err)
		}
	}
	return rep, nil
}

type order struct {
	no      int64
	version int32
}

func (v *Verifier) shard(ctx context.Context, name string, w Window, rep *Report, add func(Mismatch), progress Progress) error {
	db, err := v.pools.DB(name)
	if err != nil {
		return err
	}
	conds, args := []string{"order_no > ?"}, []any{int64(0)}
	if !w.Since.IsZero() {
		conds, args = append(conds, "placed_at >= ?"), append(args, w.Since.UTC())
	}
	if !w.Until.IsZero() {
		conds, args = append(conds, "placed_at < ?"), append(args, w.Until.UTC())
	}
	query := "SELECT order_no, version FROM orders WHERE " + strings.Join(conds, " AND ") + " ORDER BY order_no LIMIT ?"
	seen := 0
	for {
		page, err := readPage(ctx, db, query, append(args, v.pageSize))
		if err != nil {
			return shard.Classify(name, err)
		}
		if len(page) == 0 {
			return nil
		}
		args[0] = page[len(page)-1].no
		if err := v.checkPage(ctx, name, db, page, add); err != nil {
			return err
		}
		seen += len(page)
		rep.Orders += len(page)
		if progress != nil {
			progress(name, seen)
		}
	}
}

func readPage(ctx context.Context, db *sql.DB, query string, args []any) ([]order, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlrows.ScanAll(rows, func(rows *sql.Rows) (order, error) {
		var o order
		err := rows.Scan(&o.no, &o.version)
		return o, err
	})
}

func (v *Verifier) checkPage(ctx context.Context, name string, db *sql.DB, page []order, add func(Mismatch)) error {
	topo := v.pools.Topology()
	nos := make([]int64, len(page))
	for i, o := range page {
		nos[i] = o.no
	}
	in, args := sqlrows.In(nos)

	// Placement: the order must live where its epoch routes it, and only there.
	for _, o := range page {
		loc, err := topo.Route(o.no)
		if err != nil || loc.Shard == name {
			continue
		}
		other, err := v.pools.DB(loc.Shard)
		if err != nil {
			return err
		}
		var n int
		if err := other.QueryRowContext(ctx, "SELECT COUNT(*) FROM orders WHERE order_no = ?", o.no).Scan(&n); err != nil {
			return shard.Classify(loc.Shard, err)
		}
		if n > 0 {
			add(Mismatch{Kind: KindDuplicate, Shard: name, OrderNo: o.no, Detail: "also on " + loc.Shard + ", where it routes"})
		} else {
			add(Mismatch{Kind: KindWrongShard, Shard: name, OrderNo: o.no, Detail: "routes to " + loc.Shard})
		}
	}

	// Outbox: nothing may still wait or have failed.
	rows, err := db.QueryContext(ctx, `SELECT order_no, status, COUNT(*), COALESCE(MAX(last_error), '') FROM outbox
		WHERE status <> 'PUBLISHED' AND order_no IN (`+in+`) GROUP BY order_no, status`, args...)
	if err != nil {
		return shard.Classify(name, err)
	}
	type unpublished struct {
		no              int64
		status, lastErr string
		n               int
	}
	waiting, err := sqlrows.ScanAll(rows, func(rows *sql.Rows) (unpublished, error) {
		var u unpublished
		err := rows.Scan(&u.no, &u.status, &u.n, &u.lastErr)
		return u, err
	})
	if err != nil {
		return shard.Classify(name, err)
	}
	for _, u := range waiting {
		if u.status == "FAILED" {
			add(Mismatch{Kind: KindFailed, Shard: name, OrderNo: u.no, Detail: fmt.Sprintf("%d FAILED event(s), last error: %s", u.n, u.lastErr)})
		} else {
			add(Mismatch{Kind: KindPending, Shard: name, OrderNo: u.no, Detail: fmt.Sprintf("%d event(s) still PENDING", u.n)})
		}
	}

	// Read side: the document must carry the order's latest version.
	cur, err := v.docs.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: nos}}}},
		options.Find().SetProjection(bson.D{{Key: "version", Value: 1}}))
	if err != nil {
		return fmt.Errorf("reading documents: %w", err)
	}
	versions := make(map[int64]int32, len(page))
	for cur.Next(ctx) {
		var d struct {
			ID      int64 `bson:"_id"`
			Version int32 `bson:"version"`
		}
		if err := cur.Decode(&d); err != nil {
			_ = cur.Close(ctx)
			return err
		}
		versions[d.ID] = d.Version
	}
	if err := errors.Join(cur.Err(), cur.Close(ctx)); err != nil {
		return fmt.Errorf("reading documents: %w", err)
	}
	for _, o := range page {
		switch got, ok := versions[o.no]; {
		case !ok:
			add(Mismatch{Kind: KindMissingDocument, Shard: name, OrderNo: o.no, Detail: fmt.Sprintf("no document (order at version %d)", o.version)})
		case got != o.version:
			add(Mismatch{Kind: KindStaleDocument, Shard: name, OrderNo: o.no, Detail: fmt.Sprintf("document at version %d, order at %d", got, o.version)})
		}
	}
	return nil
}
