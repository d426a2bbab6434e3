// Package shard knows where an order lives: the topology of MySQL shards as a
// list of epochs, the pure routing function from order number to shard, and
// the connection pools to each shard.
package shard

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Spec names one physical shard and how to reach it.
type Spec struct {
	// Name identifies the shard in epochs, logs and metrics (for example "shard-0").
	Name string `json:"name"`
	// DSN is a go-sql-driver/mysql data source name.
	DSN string `json:"dsn"`
}

// Epoch is a range of order numbers, from FirstOrderNo up to the next epoch's
// FirstOrderNo, spread over Shards by orderNo % len(Shards). FirstOrderNo is
// the epoch's key: it never changes and no two epochs share it, whereas an
// epoch's position in Topology.Epochs moves when older epochs are retired.
type Epoch struct {
	FirstOrderNo int64    `json:"firstOrderNo"`
	Shards       []string `json:"shards"`
	// AddedAt is when the epoch was added to a running system. For a while
	// after it, a retried request may still find its order on the shard the
	// previous epoch placed it on (see PreviousPlacement).
	AddedAt *time.Time `json:"addedAt,omitempty"`
}

// Topology is every shard and every epoch, oldest epoch first. Adding shards
// appends an epoch whose FirstOrderNo is above every number handed out, so
// orders of older epochs keep routing to where they are and no data moves.
type Topology struct {
	Shards []Spec  `json:"shards"`
	Epochs []Epoch `json:"epochs"`
}

// Location is where one order number lives.
type Location struct {
	// Shard is the shard's name.
	Shard string
	// EpochFirstOrderNo names the epoch by its key (its first order number),
	// not by its position, so a Location stays meaningful while epochs are
	// retired: retiring shifts the positions of the epochs after it.
	EpochFirstOrderNo int64
	// Index is the shard's position in that epoch, orderNo % Count.
	Index int
	// Count is the number of shards in that epoch.
	Count int
}

// ErrEpochExhausted means a shard of an old epoch has handed out every number
// below the next epoch's first: the instance has not loaded the newer epoch
// yet, and a retry after it has will succeed.
var ErrEpochExhausted = errors.New("order numbers of this shard epoch are used up")

// ErrOutOfRange is returned for order numbers below the first epoch.
var ErrOutOfRange = errors.New("order number outside every shard epoch")

// ErrUnknownEpoch is returned for an epoch key that is not (or no longer) in
// the topology, for example a Location taken from a topology whose oldest
// epochs were retired since.
var ErrUnknownEpoch = errors.New("no shard epoch with this first order number")

// LoadTopology reads and validates a topology file.
func LoadTopology(path string) (Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Topology{}, fmt.Errorf("reading topology: %w", err)
	}
	t, err := ParseTopology(data)
	if err != nil {
		return Topology{}, fmt.Errorf("topology %s: %w", path, err)
	}
	return t, nil
}

// ParseTopology decodes a topology from JSON (unknown fields are an error, so
// a typo cannot silently drop a setting) and validates it.
func ParseTopology(data []byte) (Topology, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var t Topology
	if err := dec.Decode(&t); err != nil {
		return Topology{}, fmt.Errorf("decoding topology: %w", err)
	}
	if err := t.Validate(); err != nil {
		return Topology{}, err
	}
	return t, nil
}

// Validate reports the first thing that makes the topology unusable.
func (t Topology) Validate() error {
	if len(t.Shards) == 0 {
		return errors.New("topology has no shards")
	}
	known := make(map[string]bool, len(t.Shards))
	for i, s := range t.Shards {
		switch {
		case s.Name == "":
			return fmt.Errorf("shards[%d] has no name", i)
		case s.DSN == "":
			return fmt.Errorf("shard %q has no dsn", s.Name)
		case known[s.Name]:
			return fmt.Errorf("shard %q is defined twice", s.Name)
		}
		known[s.Name] = true
	}
	if len(t.Epochs) == 0 {
		return errors.New("topology has no epochs")
	}
	for i, e := range t.Epochs {
		if e.FirstOrderNo < 1 {
			return fmt.Errorf("epochs[%d]: firstOrderNo must be at least 1, got %d", i, e.FirstOrderNo)
		}
		if i > 0 && e.FirstOrderNo <= t.Epochs[i-1].FirstOrderNo {
			return fmt.Errorf("epochs[%d]: firstOrderNo %d must be above the previous epoch's %d (epochs are ordered and do not overlap)",
				i, e.FirstOrderNo, t.Epochs[i-1].FirstOrderNo)
		}
		if len(e.Shards) == 0 {
			return fmt.Errorf("epochs[%d]: empty shard list", i)
		}
		seen := make(map[string]bool, len(e.Shards))
		for _, name := range e.Shards {
			if !known[name] {
				return fmt.Errorf("epochs[%d]: unknown shard %q", i, name)
			}
			if seen[name] {
				return fmt.Errorf("epochs[%d]: shard %q listed twice", i, name)
			}
			seen[name] = true
		}
	}
	return nil
}

// Extends reports why t is not a successor of old (nil when it is): every
// shard of old keeps its name and DSN; the epochs are old's epochs, less
// some of the oldest (retired: none of their orders is left) and plus new
// ones after them. Orders therefore never change shard.
func (t Topology) Extends(old Topology) error {
	for _, s := range old.Shards {
		dsn, ok := t.DSN(s.Name)
		if !ok {
			return fmt.Errorf("shard %q is missing from the new topology", s.Name)
		}
		if dsn != s.DSN {
			return fmt.Errorf("shard %q changed its dsn", s.Name)
		}
	}
	retired := 0
	for retired < len(old.Epochs) && len(t.Epochs) > 0 && old.Epochs[retired].FirstOrderNo < t.Epochs[0].FirstOrderNo {
		retired++
	}
	// Every old epoch may be gone when the new topology starts above all of
	// them: a reload that missed the file in between (an epoch added, then
	// the oldest retired) sees the added epoch as the current one. Refusing
	// it would keep this process on the retired epoch for good.
	kept := old.Epochs[retired:]
	if len(t.Epochs) < len(kept) {
		return fmt.Errorf("the new topology has %d epochs where %d must stay: only the oldest epochs can be retired", len(t.Epochs), len(kept))
	}
	for i, e := range kept {
		n := t.Epochs[i]
		if n.FirstOrderNo != e.FirstOrderNo || !slices.Equal(n.Shards, e.Shards) {
			return fmt.Errorf("epochs[%d] changed: orders of it would route elsewhere", retired+i)
		}
	}
	return nil
}

// Route returns where an order number lives: the last epoch whose
// FirstOrderNo is at or below it, and in that epoch shard orderNo % count.
func (t Topology) Route(orderNo int64) (Location, error) {
	for i := len(t.Epochs) - 1; i >= 0; i-- {
		e := t.Epochs[i]
		if orderNo >= e.FirstOrderNo {
			idx := int(orderNo % int64(len(e.Shards)))
			return Location{Shard: e.Shards[idx], EpochFirstOrderNo: e.FirstOrderNo, Index: idx, Count: len(e.Shards)}, nil
		}
	}
	return Location{}, fmt.Errorf("%w: %d", ErrOutOfRange, orderNo)
}

// Current is the index of the epoch new orders are placed in: the last one.
// An index is only valid within this Topology value; use the epoch's
// FirstOrderNo to refer to it anywhere else.
func (t Topology) Current() int { return len(t.Epochs) - 1 }

// EpochIndex is the position of the epoch whose key (FirstOrderNo) is first.
func (t Topology) EpochIndex(first int64) (int, bool) {
	i, ok := slices.BinarySearchFunc(t.Epochs, first, func(e Epoch, first int64) int { return cmp.Compare(e.FirstOrderNo, first) })
	return i, ok
}

// Retire returns the topology without the epoch whose key is first. Only
// the oldest epoch can be retired, and never the current one: the epoch
// before an epoch bounds it, so removing one in the middle would extend its
// predecessor over its numbers and route them elsewhere.
func (t Topology) Retire(first int64) (Topology, error) {
	i, ok := t.EpochIndex(first)
	switch {
	case !ok:
		return Topology{}, fmt.Errorf("%w: %d", ErrUnknownEpoch, first)
	case i == t.Current():
		return Topology{}, fmt.Errorf("the epoch from order %d is the current one", first)
	case i != 0:
		return Topology{}, fmt.Errorf("only the oldest epoch (from order %d) can be retired", t.Epochs[0].FirstOrderNo)
	}
	next := Topology{Shards: slices.Clone(t.Shards), Epochs: slices.Clone(t.Epochs[1:])}
	return next, nil
}

// PlaceRequest picks the shard of the current epoch for a new order from its
// request id. A retry of the same request therefore reaches the same shard,
// whose unique index on the request id makes placing an order exactly-once.
func (t Topology) PlaceRequest(requestID string) Location {
	e := t.Epochs[t.Current()]
	idx := int(xxhash.Sum64String(requestID) % uint64(len(e.Shards)))
	return Location{Shard: e.Shards[idx], EpochFirstOrderNo: e.FirstOrderNo, Index: idx, Count: len(e.Shards)}
}

// PreviousPlacement is where the epoch before the current one placed a
// request, when the current epoch was added less than window before now and
// placed it elsewhere: a retry that straddles the add looks there first, so
// it returns the order its first attempt created instead of a second one.
func (t Topology) PreviousPlacement(requestID string, now time.Time, window time.Duration) (Location, bool) {
	cur := t.Current()
	e := t.Epochs[cur]
	if cur == 0 || e.AddedAt == nil || now.Sub(*e.AddedAt) >= window {
		return Location{}, false
	}
	prev := Topology{Shards: t.Shards, Epochs: t.Epochs[:cur]}
	loc := prev.PlaceRequest(requestID)
	if loc.Shard == t.PlaceRequest(requestID).Shard {
		return Location{}, false
	}
	return loc, true
}

// NumberRange is the residue class of order numbers that one shard of one
// epoch hands out: First, First+Step, First+2*Step, ... up to but excluding
// Limit (0 means no limit: the current epoch is open-ended).
type NumberRange struct {
	EpochFirstOrderNo int64
	First             int64
	Step              int64
	Limit             int64
}

// Numbers returns the residue class the given location hands out. Every
// number in it routes back to the same location. A location whose epoch is
// not in t, or that does not match the epoch's shards, is an error: the
// caller took it from another topology than t.
func (t Topology) Numbers(loc Location) (NumberRange, error) {
	i, ok := t.EpochIndex(loc.EpochFirstOrderNo)
	if !ok {
		return NumberRange{}, fmt.Errorf("%w: %d", ErrUnknownEpoch, loc.EpochFirstOrderNo)
	}
	e := t.Epochs[i]
	if loc.Count != len(e.Shards) || loc.Index < 0 || loc.Index >= loc.Count || e.Shards[loc.Index] != loc.Shard {
		return NumberRange{}, fmt.Errorf("location %s (%d of %d) is not a shard of the epoch from order %d", loc.Shard, loc.Index, loc.Count, e.FirstOrderNo)
	}
	step := int64(loc.Count)
	first := e.FirstOrderNo + (int64(loc.Index)-e.FirstOrderNo%step+step)%step
	var limit int64
	if i+1 < len(t.Epochs) {
		limit = t.Epochs[i+1].FirstOrderNo
	}
	return NumberRange{EpochFirstOrderNo: e.FirstOrderNo, First: first, Step: step, Limit: limit}, nil
}

// DSN returns the data source name of a shard.
func (t Topology) DSN(name string) (string, bool) {
	for _, s := range t.Shards {
		if s.Name == name {
			return s.DSN, true
		}
	}
	return "", false
}

// Names lists the shards in the order they are defined.
func (t Topology) Names() []string {
	out := make([]string, len(t.Shards))
	for i, s := range t.Shards {
		out[i] = s.Name
	}
	return out
}
