package orderstore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow/services/order-command/internal/domain"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// recordingCommit is a group commit that writes nothing: it records each
// group with when it began, and answers every member.
type recordingCommit struct {
	mu     sync.Mutex
	groups []committedGroup
}

type committedGroup struct {
	members []*member
	at      time.Time
}

func (r *recordingCommit) commit(group []*member) {
	r.mu.Lock()
	r.groups = append(r.groups, committedGroup{members: group, at: time.Now()})
	r.mu.Unlock()
	for _, m := range group {
		m.done <- outcome{size: len(group)}
	}
}

func (r *recordingCommit) committed() []committedGroup {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]committedGroup(nil), r.groups...)
}

// lingerRow is an order for the group committer; only its request id
// matters to it.
func lingerRow(requestID string) orderWrite {
	return orderWrite{o: &domain.Order{RequestID: requestID}}
}

// The linger is the group committer's own logic, so it is tested here over
// a commit that records groups instead of writing them; the repository's
// tests over a real shard cover what a group writes.
func TestGroupCommitterLinger(t *testing.T) {
	t.Parallel()
	// bounded is the context of a call that must be answered: if the
	// committer failed to start its group, the call ends with this deadline
	// instead of hanging the test.
	bounded := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		return ctx
	}

	t.Run("a lone order waits out the linger, then goes alone", func(t *testing.T) {
		t.Parallel()
		const linger = 30 * time.Millisecond
		rec := &recordingCommit{}
		c := newGroupCommitter(GroupConfig{Max: 64, InFlight: 1, Linger: linger}, rec.commit)
		if out := c.place(bounded(t), lingerRow("lone")); out.err != nil || out.size != 1 {
			t.Fatalf("outcome %+v, want a group of one", out)
		}
		groups := rec.committed()
		if len(groups) != 1 {
			t.Fatalf("%d groups committed, want 1", len(groups))
		}
		// A timer never fires early, so this bound holds on any machine.
		if waited := groups[0].at.Sub(groups[0].members[0].queued); waited < linger {
			t.Errorf("the group began %s after its order asked, want at least the linger (%s)", waited, linger)
		}
		testinfra.Eventually(t, 10*time.Second, func() bool { q, x := c.waiting(); return q == 0 && x == 0 },
			"the committer goroutine should end once the queue is empty")
	})

	t.Run("orders within the linger share a group, and a full group goes at once", func(t *testing.T) {
		t.Parallel()
		rec := &recordingCommit{}
		// An hour: the group can only go because it fills up.
		c := newGroupCommitter(GroupConfig{Max: 3, InFlight: 1, Linger: time.Hour}, rec.commit)
		outcomes := make(chan outcome, 3)
		for i, id := range []string{"a", "b", "c"} {
			go func() { outcomes <- c.place(bounded(t), lingerRow(id)) }()
			if i < 2 {
				testinfra.Eventually(t, 10*time.Second, func() bool { q, x := c.waiting(); return q == i+1 && x == 1 },
					"want %d orders lingering with one committer", i+1)
				if n := len(rec.committed()); n != 0 {
					t.Fatalf("%d groups committed with %d of 3 orders queued, want none before the group is full", n, i+1)
				}
			}
		}
		for range 3 {
			if out := <-outcomes; out.err != nil || out.size != 3 {
				t.Errorf("outcome %+v, want a group of three", out)
			}
		}
		if groups := rec.committed(); len(groups) != 1 || len(groups[0].members) != 3 {
			t.Errorf("groups committed: %d, want one of all three orders", len(groups))
		}
	})

	t.Run("LingerCount members end the linger", func(t *testing.T) {
		t.Parallel()
		rec := &recordingCommit{}
		c := newGroupCommitter(GroupConfig{Max: 64, InFlight: 1, Linger: time.Hour, LingerCount: 2}, rec.commit)
		first := make(chan outcome, 1)
		go func() { first <- c.place(bounded(t), lingerRow("a")) }()
		testinfra.Eventually(t, 10*time.Second, func() bool { q, _ := c.waiting(); return q == 1 }, "want one order lingering")
		if out := c.place(bounded(t), lingerRow("b")); out.err != nil || out.size != 2 {
			t.Fatalf("outcome %+v, want a group of two", out)
		}
		if out := <-first; out.err != nil || out.size != 2 {
			t.Errorf("outcome %+v, want a group of two", out)
		}
	})

	t.Run("a caller that gives up while lingering is left out", func(t *testing.T) {
		t.Parallel()
		rec := &recordingCommit{}
		c := newGroupCommitter(GroupConfig{Max: 2, InFlight: 1, Linger: time.Hour}, rec.commit)
		ctx, cancel := context.WithCancel(context.Background())
		gaveUp := make(chan outcome, 1)
		go func() { gaveUp <- c.place(ctx, lingerRow("gave-up")) }()
		testinfra.Eventually(t, 10*time.Second, func() bool { q, _ := c.waiting(); return q == 1 }, "want one order lingering")
		cancel()
		if out := <-gaveUp; out.err == nil {
			t.Fatalf("cancelled caller: outcome %+v, want its context's error", out)
		}
		// The queue is full with the next order, so the group goes, without
		// the caller that left.
		if out := c.place(bounded(t), lingerRow("stays")); out.err != nil || out.size != 1 {
			t.Fatalf("outcome %+v, want a group of one", out)
		}
		groups := rec.committed()
		if len(groups) != 1 || len(groups[0].members) != 1 || groups[0].members[0].row.o.RequestID != "stays" {
			t.Errorf("groups committed: %+v, want one holding only the order that stayed", groups)
		}
	})
}
