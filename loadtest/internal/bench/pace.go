package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Paced calls op perSecond times a second for duration and returns how many
// calls failed. It is an open loop on a fixed schedule: call n is due at
// start + n/perSecond, a slow call does not delay the next one, and when the
// generator itself falls behind (a busy machine) it starts every call that
// is due at once instead of silently dropping them, so the rate asked is the
// rate offered.
func Paced(ctx context.Context, perSecond int, duration time.Duration, seq *atomic.Int64, op func(ctx context.Context, i int64) error) int {
	interval := time.Second / time.Duration(perSecond)
	start := time.Now()
	total := int64(duration / interval)
	var failed atomic.Int64
	var wg sync.WaitGroup
	timer := time.NewTimer(0)
	defer timer.Stop()
	for n := int64(0); n < total && ctx.Err() == nil; {
		due := int64(time.Since(start)/interval) + 1
		for ; n < min(due, total); n++ {
			wg.Go(func() {
				if err := op(ctx, seq.Add(1)); err != nil {
					failed.Add(1)
				}
			})
		}
		timer.Reset(time.Until(start.Add(time.Duration(n) * interval)))
		select {
		case <-ctx.Done():
		case <-timer.C:
		}
	}
	wg.Wait()
	return int(failed.Load())
}
