package verify

import (
	"context"
	"fmt"
	"slices"

	"github.com/orderflow/orderflow/shared/projection/docstore"
	"github.com/orderflow/orderflow/shared/projection/source"
)

// Reprojector re-projects orders by number (readmodel.Rebuilder.Orders, the
// rebuild's own path).
type Reprojector func(ctx context.Context, orderNos []int64) error

// RepairResult is the outcome of a repair.
type RepairResult struct {
	// Repaired orders were re-projected and now check out.
	Repaired []int64
	// StillWrong are the orders whose document is still missing or stale
	// after the re-projection.
	StillWrong []Mismatch
}

// Repair re-projects exactly the orders rep found missing or stale, then
// checks those orders again against their shards.
func (v *Verifier) Repair(ctx context.Context, rep Report, reproject Reprojector) (RepairResult, error) {
	var res RepairResult
	nos := slices.Clone(rep.Repairable)
	slices.Sort(nos)
	nos = slices.Compact(nos)
	if len(nos) == 0 {
		return res, nil
	}
	if err := reproject(ctx, nos); err != nil {
		return res, fmt.Errorf("re-projecting %d orders: %w", len(nos), err)
	}
	wrong, err := v.Recheck(ctx, nos)
	if err != nil {
		return res, err
	}
	bad := map[int64]bool{}
	for _, m := range wrong {
		bad[m.OrderNo] = true
	}
	for _, no := range nos {
		if !bad[no] {
			res.Repaired = append(res.Repaired, no)
		}
	}
	res.StillWrong = wrong
	return res, nil
}

// Recheck compares the documents of the given orders with the orders on
// their shards and returns those still missing or stale. An order no longer
// on its shard (purged meanwhile) is not wrong.
func (v *Verifier) Recheck(ctx context.Context, orderNos []int64) ([]Mismatch, error) {
	var out []Mismatch
	reader := source.NewReader(v.pools)
	store := docstore.NewStore(v.docs.Database())
	for batch := range slices.Chunk(orderNos, max(v.pageSize, 1)) {
		orders, err := reader.Read(ctx, batch)
		if err != nil {
			return nil, fmt.Errorf("re-reading orders: %w", err)
		}
		states, err := store.States(ctx, batch)
		if err != nil {
			return nil, fmt.Errorf("re-reading documents: %w", err)
		}
		for _, no := range batch {
			o, ok := orders[no]
			if !ok {
				continue
			}
			switch st, has := states[no]; {
			case !has:
				out = append(out, Mismatch{Kind: KindMissingDocument, Shard: o.Shard, OrderNo: no, Detail: fmt.Sprintf("still no document (order at version %d)", o.Version)})
			case st.Version != o.Version:
				out = append(out, Mismatch{Kind: KindStaleDocument, Shard: o.Shard, OrderNo: no, Detail: fmt.Sprintf("document still at version %d, order at %d", st.Version, o.Version)})
			}
		}
	}
	return out, nil
}
