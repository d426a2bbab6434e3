package projection

import (
	"fmt"

	"github.com/orderflow/orderflow/shared/projection/source"
)

// InvalidOrderError says that an order re-read from its shard cannot be
// projected: its row breaks what every order the command side writes
// satisfies. Re-reading it again gives the same row, so retries cannot help;
// the events of that order are poison, the rest of their batch is not.
type InvalidOrderError struct {
	// OrderNo is the order at fault.
	OrderNo int64
	// Reason says which rule it breaks.
	Reason string
}

func (e *InvalidOrderError) Error() string {
	return fmt.Sprintf("order %d is not valid: %s", e.OrderNo, e.Reason)
}

// Validate checks what a re-read order must satisfy to become a document and
// external events: a known status, a version of at least 1, a status history
// whose entries have known statuses and include the order's version with its
// status, and at least one item with a positive quantity and a price that is
// not negative. It returns a *InvalidOrderError naming the first rule broken.
func Validate(o source.Order) error {
	invalid := func(format string, args ...any) error {
		return &InvalidOrderError{OrderNo: o.OrderNo, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case o.OrderNo < 1:
		return invalid("order number below 1")
	case o.Version < 1:
		return invalid("version %d below 1", o.Version)
	case eventTypeFor(o.Status) == "":
		return invalid("unknown status %q", o.Status)
	case o.UserID == "" || o.ShopID == "":
		return invalid("no user or no shop")
	case len(o.Items) == 0:
		return invalid("no items")
	case len(o.History) == 0:
		return invalid("no status history")
	}
	for i, it := range o.Items {
		if it.Quantity < 1 || it.UnitPrice < 0 {
			return invalid("item %d: quantity %d, unit price %d", i+1, it.Quantity, it.UnitPrice)
		}
	}
	current := false
	for _, c := range o.History {
		if eventTypeFor(c.Status) == "" {
			return invalid("history version %d: unknown status %q", c.Version, c.Status)
		}
		if c.Version == o.Version {
			if c.Status != o.Status {
				return invalid("history version %d is %s, the order is %s", c.Version, c.Status, o.Status)
			}
			current = true
		}
	}
	if !current {
		return invalid("status history lacks version %d", o.Version)
	}
	return nil
}

// InvalidOrders returns every *InvalidOrderError in err's tree (Project joins
// one per invalid order of a batch), in the order they appear.
func InvalidOrders(err error) []*InvalidOrderError {
	var out []*InvalidOrderError
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if ie, ok := err.(*InvalidOrderError); ok {
			out = append(out, ie)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}
