// Package shards answers the one question the query side asks the command
// side's shards: was this order placed? It reads the order's row by primary
// key on the shard its number routes to, through the shard's circuit
// breaker and statement deadline, like every shard call in orderflow.
package shards

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/orderflow/orderflow/shared/shard"
)

// Orders implements app.Orders over the shard pools.
type Orders struct {
	pools  *shard.Pools
	reload Reload
}

// Reload reads the topology into the pools now and reports whether it
// changed (shard.ReloadTopology over the service's topology file).
type Reload func(ctx context.Context) (bool, error)

// NewOrders returns the existence check over pools, whose topology (kept
// current by the caller's topology watch) routes each order number. reload
// is called before an order of the newest epoch is reported missing: a
// shard may have been added since the watch last looked, and order-command
// may already place orders in the new epoch, which the old topology routes
// to another shard.
func NewOrders(pools *shard.Pools, reload Reload) (*Orders, error) {
	if pools == nil || reload == nil {
		return nil, errors.New("shards: pools and reload are required")
	}
	return &Orders{pools: pools, reload: reload}, nil
}

// existsSQL reads nothing but the primary key: the orders table's row of an
// order is written in the transaction that placed it.
const existsSQL = `SELECT 1 FROM orders WHERE order_no = ?`

// Exists reports whether the order is on its shard. A number below the
// first shard epoch routes nowhere: no order has it.
func (o *Orders) Exists(ctx context.Context, orderNo int64) (bool, error) {
	topo := o.pools.Topology()
	found, err := o.exists(ctx, topo, orderNo)
	if err != nil || found {
		return found, err
	}
	// A new epoch starts above every number handed out before it, so only
	// a number of the newest known epoch can belong to one not seen yet.
	if orderNo < topo.Epochs[topo.Current()].FirstOrderNo {
		return false, nil
	}
	changed, err := o.reload(ctx)
	if err != nil {
		return false, fmt.Errorf("reloading the topology: %w", err)
	}
	if !changed {
		return false, nil
	}
	return o.exists(ctx, o.pools.Topology(), orderNo)
}

func (o *Orders) exists(ctx context.Context, topo shard.Topology, orderNo int64) (bool, error) {
	loc, err := topo.Route(orderNo)
	if errors.Is(err, shard.ErrOutOfRange) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("routing order %d: %w", orderNo, err)
	}
	found := false
	err = o.pools.Do(ctx, loc.Shard, func(ctx context.Context, db *sql.DB) error {
		var one int
		switch err := db.QueryRowContext(ctx, existsSQL, orderNo).Scan(&one); {
		case errors.Is(err, sql.ErrNoRows):
			return nil
		case err != nil:
			return err
		}
		found = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("looking up order %d on %s: %w", orderNo, loc.Shard, err)
	}
	return found, nil
}
