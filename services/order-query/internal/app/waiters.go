package app

import (
	"context"
	"sync"
	"time"

	"github.com/orderflow/orderflow/shared/orderdoc"
)

// waiters serves every read that waits for a version with one query per
// poll interval for all of them: under load a read-your-writes wait is common,
// and a thousand requests each re-reading their own document every interval
// would put a thousand queries per interval on the database.
type waiters struct {
	store    Store
	interval time.Duration

	mu      sync.Mutex
	pending map[int64][]*waiter
}

type waiter struct {
	min int32
	// doc is the document that reached min, set before done is closed.
	doc  *orderdoc.Document
	done chan struct{}
}

func newWaiters(store Store, interval time.Duration) *waiters {
	return &waiters{store: store, interval: interval, pending: map[int64][]*waiter{}}
}

// add registers a wait for orderNo to reach version min.
func (w *waiters) add(orderNo int64, min int32) *waiter {
	wt := &waiter{min: min, done: make(chan struct{})}
	w.mu.Lock()
	w.pending[orderNo] = append(w.pending[orderNo], wt)
	w.mu.Unlock()
	return wt
}

// remove forgets a wait that ended without its version.
func (w *waiters) remove(orderNo int64, wt *waiter) {
	w.mu.Lock()
	defer w.mu.Unlock()
	list := w.pending[orderNo]
	for i, x := range list {
		if x == wt {
			list = append(list[:i], list[i+1:]...)
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

// poll reads the documents of every awaited order in one query and hands
// each satisfied wait its document, so that the released read needs no
// query of its own. A failed read leaves them waiting; each ends
// by its own deadline at the latest.
func (w *waiters) poll(ctx context.Context) {
	w.mu.Lock()
	nos := make([]int64, 0, len(w.pending))
	for no := range w.pending {
		nos = append(nos, no)
	}
	w.mu.Unlock()
	if len(nos) == 0 {
		return
	}
	docs, err := w.store.Documents(ctx, nos)
	if err != nil {
		return
	}
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
