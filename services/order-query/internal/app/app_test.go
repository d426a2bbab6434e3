package app

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow/shared/auth"
	"github.com/orderflow/orderflow/shared/orderdoc"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// fakeStore answers Get from a script of versions (one per call, the last
// one repeating; 0 means absent) and List from a fixed list.
type fakeStore struct {
	mu       sync.Mutex
	versions []int32
	gets     int
	getErr   error
	docs     []orderdoc.Document
	lists    []ListQuery
}

func (f *fakeStore) Get(_ context.Context, orderNo int64) (*orderdoc.Document, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.getErr != nil {
		return nil, f.getErr
	}
	f.gets++
	if len(f.versions) == 0 {
		return nil, ErrNotFound
	}
	v := f.versions[min(f.gets, len(f.versions))-1]
	if v == 0 {
		return nil, ErrNotFound
	}
	return &orderdoc.Document{OrderNo: orderNo, Version: v}, nil
}

// Documents is one more read of the sequence, for every order asked about.
func (f *fakeStore) Documents(_ context.Context, orderNos []int64) (map[int64]*orderdoc.Document, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.getErr != nil {
		return nil, f.getErr
	}
	f.gets++
	out := map[int64]*orderdoc.Document{}
	if len(f.versions) == 0 {
		return out, nil
	}
	if v := f.versions[min(f.gets, len(f.versions))-1]; v != 0 {
		for _, no := range orderNos {
			out[no] = &orderdoc.Document{OrderNo: no, Version: v}
		}
	}
	return out, nil
}

func (f *fakeStore) List(_ context.Context, q ListQuery) ([]orderdoc.Document, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists = append(f.lists, q)
	var out []orderdoc.Document
	for _, d := range f.docs {
		if q.After != nil && !d.PlacedAt.Before(q.After.PlacedAt) &&
			!(d.PlacedAt.Equal(q.After.PlacedAt) && d.OrderNo < q.After.OrderNo) {
			continue
		}
		if len(out) == q.Limit {
			break
		}
		out = append(out, d)
	}
	return out, nil
}

func (f *fakeStore) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets
}

func TestGetOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		versions    []int32
		minVersion  int32
		wait        time.Duration
		want        int32 // 0: NOT_FOUND
		wantStale   bool
		wantMaxGets int // 0: no bound
	}{
		{name: "plain read", versions: []int32{3}, want: 3, wantMaxGets: 1},
		{name: "absent", versions: nil, want: 0, wantMaxGets: 1},
		{name: "new enough already", versions: []int32{3}, minVersion: 2, wait: time.Minute, want: 3, wantMaxGets: 1},
		{name: "exactly the version", versions: []int32{3}, minVersion: 3, wait: time.Minute, want: 3, wantMaxGets: 1},
		// First read, version polls until it is there, one last full read.
		{name: "catches up while waiting", versions: []int32{1, 1, 2, 3}, minVersion: 3, wait: time.Minute, want: 3, wantMaxGets: 5},
		{name: "appears while waiting", versions: []int32{0, 0, 1}, minVersion: 1, wait: time.Minute, want: 1, wantMaxGets: 4},
		{name: "never catches up", versions: []int32{1}, minVersion: 2, wait: 30 * time.Millisecond, want: 1, wantStale: true},
		{name: "never appears", versions: []int32{0}, minVersion: 2, wait: 30 * time.Millisecond, want: 0},
		{name: "no wait configured", versions: []int32{1, 2}, minVersion: 2, wait: 0, want: 1, wantStale: true, wantMaxGets: 1},
		{name: "older document after absence", versions: []int32{1, 0}, minVersion: 2, wait: 30 * time.Millisecond, want: 1, wantStale: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := &fakeStore{versions: tc.versions}
			svc, err := New(store, nil, auth.Unprotected{}, Config{MinVersionWait: tc.wait, PollInterval: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			view, err := svc.GetOrder(t.Context(), 7, tc.minVersion)
			if tc.want == 0 {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("error = %v, want ErrNotFound", err)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if view.Order.Version != tc.want || view.Stale != tc.wantStale {
					t.Errorf("version %d stale %v, want %d stale %v", view.Order.Version, view.Stale, tc.want, tc.wantStale)
				}
			}
			if tc.wantMaxGets > 0 && store.calls() > tc.wantMaxGets {
				t.Errorf("store read %d times, want at most %d", store.calls(), tc.wantMaxGets)
			}
		})
	}
}

// countingStore counts reads of one document and polls, and answers
// version 2 for every order once asked ready.
type countingStore struct {
	fakeStore
	gets  atomic.Int64
	polls atomic.Int64
	ready atomic.Bool
}

func (c *countingStore) Get(_ context.Context, orderNo int64) (*orderdoc.Document, error) {
	c.gets.Add(1)
	v := int32(1)
	if c.ready.Load() {
		v = 2
	}
	return &orderdoc.Document{OrderNo: orderNo, Version: v}, nil
}

func (c *countingStore) Documents(_ context.Context, orderNos []int64) (map[int64]*orderdoc.Document, error) {
	c.polls.Add(1)
	out := map[int64]*orderdoc.Document{}
	if c.ready.Load() {
		for _, no := range orderNos {
			out[no] = &orderdoc.Document{OrderNo: no, Version: 2}
		}
	}
	return out, nil
}

// Many reads waiting at once cost one query per poll interval, not one
// each, and a released read answers with the document the poll read.
func TestWaitingReadsShareOneQueryPerPoll(t *testing.T) {
	t.Parallel()
	store := &countingStore{}
	svc, err := New(store, nil, auth.Unprotected{}, Config{MinVersionWait: time.Minute, PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	const readers = 200
	results := make(chan *OrderView, readers)
	for i := range readers {
		go func() {
			view, err := svc.GetOrder(t.Context(), int64(i+1), 2)
			if err != nil {
				t.Error(err)
			}
			results <- view
		}()
	}
	// Let the readers wait through a number of polls, then release them.
	deadline := time.Now().Add(10 * time.Second)
	for store.polls.Load() < 20 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	polled := store.polls.Load()
	store.ready.Store(true)
	for range readers {
		if view := <-results; view == nil || view.Stale || view.Order.Version != 2 {
			t.Fatalf("a waiting read answered %+v", view)
		}
	}
	if polled < 20 || polled > 10*20 {
		t.Errorf("%d polls while %d reads waited through about 20 polls; want one query per poll", polled, readers)
	}
	if gets := store.gets.Load(); gets != readers {
		t.Errorf("%d single-document reads for %d waiting reads: want one each (the first look), none after the wait", gets, readers)
	}
}

func TestGetOrderWaitEndsBeforeTheRequestDeadline(t *testing.T) {
	t.Parallel()
	store := &fakeStore{versions: []int32{1}}
	svc, err := New(store, nil, auth.Unprotected{}, Config{MinVersionWait: time.Hour, PollInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	view, err := svc.GetOrder(ctx, 7, 2)
	if err != nil {
		t.Fatalf("GetOrder: %v, want the stale document before the deadline", err)
	}
	if !view.Stale || view.Order.Version != 1 {
		t.Errorf("version %d stale %v, want 1 stale", view.Order.Version, view.Stale)
	}
	if ctx.Err() != nil {
		t.Errorf("the answer came after the request's deadline")
	}
}

func TestGetOrderCallerGoesAway(t *testing.T) {
	t.Parallel()
	store := &fakeStore{versions: []int32{1}}
	svc, err := New(store, nil, auth.Unprotected{}, Config{MinVersionWait: time.Hour, PollInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := svc.GetOrder(ctx, 7, 2)
		done <- err
	}()
	testinfra.Eventually(t, 5*time.Second, func() bool { return store.calls() >= 3 }, "the read never polled")
	select {
	case err := <-done:
		t.Fatalf("GetOrder returned before the caller went away: %v", err)
	default:
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
}

func TestGetOrderStoreFailure(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	svc, err := New(&fakeStore{getErr: boom}, nil, auth.Unprotected{}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.GetOrder(t.Context(), 7, 0); !errors.Is(err, boom) {
		t.Errorf("error = %v, want the store's error wrapped", err)
	}
}

func TestListPagesThroughEverything(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	// Newest first; pairs share a placedAt so the order number breaks ties.
	var docs []orderdoc.Document
	for i := range 11 {
		docs = append(docs, orderdoc.Document{OrderNo: int64(100 - i), PlacedAt: base.Add(-time.Duration(i/2) * time.Second)})
	}
	svc, err := New(&fakeStore{docs: docs}, nil, auth.Unprotected{}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int32{1, 2, 3, 5, 10, 11, 12} {
		var got []int64
		token := ""
		for pages := 0; ; pages++ {
			if pages > len(docs)+1 {
				t.Fatalf("page size %d: too many pages", size)
			}
			page, err := svc.ListUserOrders(t.Context(), "user-1", size, token)
			if err != nil {
				t.Fatalf("page size %d: %v", size, err)
			}
			if len(page.Orders) > int(size) {
				t.Fatalf("page size %d: page of %d", size, len(page.Orders))
			}
			for _, d := range page.Orders {
				got = append(got, d.OrderNo)
			}
			if token = page.NextPageToken; token == "" {
				break
			}
		}
		want := make([]int64, len(docs))
		for i, d := range docs {
			want[i] = d.OrderNo
		}
		if !slices.Equal(got, want) {
			t.Errorf("page size %d: orders %v, want %v", size, got, want)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		store Store
		cfg   Config
	}{
		{"no store", nil, Config{}},
		{"negative wait", &fakeStore{}, Config{MinVersionWait: -time.Second}},
		{"negative poll interval", &fakeStore{}, Config{PollInterval: -time.Second}},
		{"negative waiting limit", &fakeStore{}, Config{MaxWaiting: -1}},
		{"negative poll batch", &fakeStore{}, Config{PollBatch: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := New(tc.store, nil, auth.Unprotected{}, tc.cfg); err == nil {
				t.Error("New accepted the configuration")
			}
		})
	}
}

// Reads beyond the waiting limit are refused at once while the limit is
// held, reads that need no wait are still served, and a place freed by a
// read that ended is taken again.
func TestWaitingReadsAreBounded(t *testing.T) {
	t.Parallel()
	const limit, extra = 3, 2
	store := &countingStore{} // version 1 for every order, never 2
	svc, err := New(store, nil, auth.Unprotected{}, Config{MinVersionWait: time.Hour, PollInterval: time.Millisecond, MaxWaiting: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ctx, release := context.WithCancel(t.Context())
	defer release()
	errs := make(chan error, limit+extra)
	for i := range limit + extra {
		go func() {
			_, err := svc.GetOrder(ctx, int64(i+1), 2)
			errs <- err
		}()
	}
	for range extra {
		if err := <-errs; !errors.Is(err, ErrTooManyWaiting) {
			t.Fatalf("a read beyond the limit answered %v, want ErrTooManyWaiting", err)
		}
	}
	select {
	case err := <-errs:
		t.Fatalf("a read within the limit ended while it waited: %v", err)
	default:
	}
	tests := []struct {
		name       string
		minVersion int32
		wantErr    error
	}{
		{name: "another wait is refused", minVersion: 5, wantErr: ErrTooManyWaiting},
		{name: "a read without a minimum version is served", minVersion: 0},
		{name: "a minimum version already reached is served", minVersion: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			short, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			_, err := svc.GetOrder(short, 99, tc.minVersion)
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("GetOrder(minVersion %d) = %v, want %v", tc.minVersion, err, tc.wantErr)
			}
		})
	}
	release()
	for range limit {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Errorf("a held read ended with %v, want context.Canceled", err)
		}
	}
	// The places are free again: a wait is admitted and ends stale by its
	// own deadline.
	short, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	view, err := svc.GetOrder(short, 1, 2)
	if err != nil || !view.Stale {
		t.Errorf("after the release: view %+v error %v, want a stale answer", view, err)
	}
}

// batchStore records the order numbers of every poll query and answers
// version 2 once ready.
type batchStore struct {
	countingStore
	mu      sync.Mutex
	batches [][]int64
}

func (b *batchStore) Documents(ctx context.Context, orderNos []int64) (map[int64]*orderdoc.Document, error) {
	b.mu.Lock()
	b.batches = append(b.batches, slices.Clone(orderNos))
	b.mu.Unlock()
	return b.countingStore.Documents(ctx, orderNos)
}

// asked returns the largest batch and every order number asked so far.
func (b *batchStore) asked() (int, map[int64]bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	largest, seen := 0, map[int64]bool{}
	for _, batch := range b.batches {
		largest = max(largest, len(batch))
		for _, no := range batch {
			seen[no] = true
		}
	}
	return largest, seen
}

// The shared poll asks for at most PollBatch order numbers per query and
// still reaches every waiting read.
func TestPollQueriesInBatches(t *testing.T) {
	t.Parallel()
	const readers, batch = 10, 4
	store := &batchStore{}
	svc, err := New(store, nil, auth.Unprotected{}, Config{MinVersionWait: time.Minute, PollInterval: 5 * time.Millisecond, PollBatch: batch})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	results := make(chan error, readers)
	for i := range readers {
		go func() {
			view, err := svc.GetOrder(t.Context(), int64(i+1), 2)
			if err == nil && (view.Stale || view.Order.Version != 2) {
				err = errors.New("released with an older document")
			}
			results <- err
		}()
	}
	testinfra.Eventually(t, 10*time.Second, func() bool {
		_, seen := store.asked()
		return len(seen) == readers
	}, "the poll never asked for every waiting order")
	store.ready.Store(true)
	for range readers {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	if largest, _ := store.asked(); largest > batch {
		t.Errorf("a poll query asked for %d order numbers, want at most %d", largest, batch)
	}
}

// fakeOrders answers Exists from a set, or with err.
type fakeOrders struct {
	placed map[int64]bool
	err    error
	asked  atomic.Int64
}

func (f *fakeOrders) Exists(_ context.Context, orderNo int64) (bool, error) {
	f.asked.Add(1)
	return f.placed[orderNo], f.err
}

// A read with a minimum version of an order with no document asks the
// source of truth: an order never placed is NOT_FOUND at once; one that
// was placed, or one the shard cannot tell about, is waited for.
func TestGetOrderAsksWhetherAMissingOrderExists(t *testing.T) {
	t.Parallel()
	const wait = time.Minute
	tests := []struct {
		name       string
		versions   []int32
		orders     *fakeOrders
		minVersion int32
		want       int32 // 0: NOT_FOUND
		wantAsked  int64
	}{
		{name: "never placed", orders: &fakeOrders{}, minVersion: 1, wantAsked: 1},
		{name: "never placed, a later version", orders: &fakeOrders{}, minVersion: 4, wantAsked: 1},
		{name: "placed, projected while waiting", versions: []int32{0, 0, 1}, orders: &fakeOrders{placed: map[int64]bool{7: true}},
			minVersion: 1, want: 1, wantAsked: 1},
		{name: "the shard cannot tell", versions: []int32{0, 1}, orders: &fakeOrders{err: errors.New("shard down")},
			minVersion: 1, want: 1, wantAsked: 1},
		{name: "a document exists: nothing asked", versions: []int32{1, 2}, orders: &fakeOrders{}, minVersion: 2, want: 2},
		{name: "no minimum version: nothing asked", orders: &fakeOrders{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			svc, err := New(&fakeStore{versions: tc.versions}, tc.orders, auth.Unprotected{}, Config{MinVersionWait: wait, PollInterval: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			began := time.Now()
			view, err := svc.GetOrder(t.Context(), 7, tc.minVersion)
			if tc.want == 0 {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("GetOrder = %+v, %v; want ErrNotFound", view, err)
				}
				if took := time.Since(began); took > wait/2 {
					t.Errorf("NOT_FOUND after %s: the read waited", took)
				}
			} else if err != nil || view.Order.Version != tc.want || view.Stale {
				t.Fatalf("GetOrder = %+v, %v; want version %d, not stale", view, err, tc.want)
			}
			if got := tc.orders.asked.Load(); got != tc.wantAsked {
				t.Errorf("asked the source of truth %d times, want %d", got, tc.wantAsked)
			}
		})
	}
}
