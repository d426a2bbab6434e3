// Package retention ties how long an order can be changed to how long it
// stays on its shard. order-command refuses to advance or cancel an order
// older than its change window (ORDERFLOW_CANCEL_WINDOW), and the purge
// removes orders older than its retention (ORDERFLOW_ORDER_RETENTION, orderctl
// orders purge --retention). The two are configured in different processes,
// so they are tied to one bound instead of to each other: the change window
// may be at most Min and the retention at least Min. An order that can
// still be changed is then never purged, whatever either side is set to.
//
// The package has no dependencies, so order-command can check its window
// without pulling in the purge's read-side client.
package retention

import (
	"fmt"
	"time"
)

// Min is the shortest retention the purge accepts and the longest change
// window order-command accepts: 30 days.
const Min = 30 * 24 * time.Hour

// ValidateRetention checks a purge retention: at least Min.
func ValidateRetention(d time.Duration) error {
	if d < Min {
		return fmt.Errorf("retention %s is shorter than %s, the longest an order can still be changed; orders that can be changed must not be purged", d, Min)
	}
	return nil
}

// ValidateChangeWindow checks order-command's change (cancel) window:
// positive and at most Min.
func ValidateChangeWindow(d time.Duration) error {
	switch {
	case d <= 0:
		return fmt.Errorf("change window must be positive, got %s", d)
	case d > Min:
		return fmt.Errorf("change window %s is longer than %s, the shortest retention: an order could be purged while it can still be changed", d, Min)
	}
	return nil
}
