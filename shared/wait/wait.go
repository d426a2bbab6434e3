// Package wait is the one context-aware pause of orderflow: every retry loop,
// back-off and poll waits through Sleep, so a cancelled context ends the wait
// at once instead of after the full delay.
package wait

import (
	"context"
	"time"
)

// Sleep pauses for d or until ctx ends, whichever comes first. It reports
// whether the full d elapsed (false: ctx ended first). A d of zero or less
// returns at once, true unless ctx has already ended.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
