package app

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/orderflow/orderflow/shared/orderdoc"
)

// waiters serves every read that waits for a version with one query per
// poll interval for all of them: under load a read-your-writes wait is common,
// and a thousand requests each re-reading their own document every interval
// would put a thousand queries per interval on the database. How many wait
// at once is bounded (max), and so is each query (batch order numbers), so
// that reads asking for versions that never come cannot grow either.
type waiters struct {
	store    Store
	interval time.Duration
	max      int
	batch    int

	mu      sync.Mutex
	pending map[int64][]*waiter
	// count is the number of waiters in pending: a waiter counts from add
	// until it leaves pending, released by a poll or removed.
	count int
}

type waiter struct {
	min int32
	// doc is the document that reached min, set before done is closed.
	doc  *orderdoc.Document
	done chan struct{}
}

func newWaiters(store Store, interval time.Duration, max, batch int) *waiters {
	return &waiters{store: store, interval: interval, max: max, batch: batch, pending: map[int64][]*waiter{}}
}

// add registers a wait for orderNo to reach version min; false, and nothing
// registered, when max waits are already registered.
func (w *waiters) add(orderNo int64, min int32) (*waiter, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.count >= w.max {
		return nil, false
	}
	wt := &waiter{min: min, done: make(chan struct{})}
	w.pending[orderNo] = append(w.pending[orderNo], wt)
	w.count++
	return wt, true
}

// remove forgets a wait that ended without its version.
func (w *waiters) remove(orderNo int64, wt *waiter) {
	w.mu.Lock()
	defer w.mu.Unlock()
	list := w.pending[orderNo]
	for i, x := range list {
		if x == wt {
			list = append(list[:i], list[i+1:]...)
			w.count--
			break
		}
	}
	if len(list) == 0 {
		delete(w.pending, orderNo)
	} else {
		w.pending[orderNo] = list
	}
}

// run polls until ctx ends.
func (w *waiters) run(ctx context.Context) {
	ticker := time.NewTicker(w.interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		w.poll(ctx)
	}
}

// poll reads the documents of every awaited order, batch order numbers per
// query, and hands each satisfied wait its document, so that the released
// read needs no query of its own. A failed query leaves its batch waiting
// (the other batches are still read); each wait ends by its own deadline at
// the latest.
func (w *waiters) poll(ctx context.Context) {
	w.mu.Lock()
	nos := make([]int64, 0, len(w.pending))
	for no := range w.pending {
		nos = append(nos, no)
	}
	w.mu.Unlock()
	for batch := range slices.Chunk(nos, w.batch) {
		if ctx.Err() != nil {
			return
		}
		docs, err := w.store.Documents(ctx, batch)
		if err != nil {
			continue
		}
		w.release(docs)
	}
}

// release ends the waits that docs satisfy.
func (w *waiters) release(docs map[int64]*orderdoc.Document) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for no, doc := range docs {
		list := w.pending[no]
		kept := list[:0]
		for _, wt := range list {
			if doc.Version >= wt.min {
				own := *doc // each read gets its own document to answer with
				wt.doc = &own
				close(wt.done)
				w.count--
			} else {
				kept = append(kept, wt)
			}
		}
		if len(kept) == 0 {
			delete(w.pending, no)
		} else {
			w.pending[no] = kept
		}
	}
}
