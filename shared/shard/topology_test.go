package shard_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/shared/shard"
)

func twoEpochs() shard.Topology {
	return shard.Topology{
		Shards: []shard.Spec{{Name: "a", DSN: "x"}, {Name: "b", DSN: "x"}, {Name: "c", DSN: "x"}},
		Epochs: []shard.Epoch{
			{FirstOrderNo: 1, Shards: []string{"a", "b"}},
			{FirstOrderNo: 1001, Shards: []string{"a", "b", "c"}},
		},
	}
}

func TestRoute(t *testing.T) {
	t.Parallel()
	topo := twoEpochs()
	tests := []struct {
		name    string
		orderNo int64
		want    shard.Location
		wantErr error
	}{
		{name: "first number of first epoch", orderNo: 1, want: shard.Location{Shard: "b", EpochFirstOrderNo: 1, Index: 1, Count: 2}},
		{name: "even number in first epoch", orderNo: 2, want: shard.Location{Shard: "a", EpochFirstOrderNo: 1, Index: 0, Count: 2}},
		{name: "last number of first epoch", orderNo: 1000, want: shard.Location{Shard: "a", EpochFirstOrderNo: 1, Index: 0, Count: 2}},
		{name: "first number of second epoch", orderNo: 1001, want: shard.Location{Shard: "c", EpochFirstOrderNo: 1001, Index: 2, Count: 3}},
		{name: "second epoch modulo three", orderNo: 1002, want: shard.Location{Shard: "a", EpochFirstOrderNo: 1001, Index: 0, Count: 3}},
		{name: "zero is below every epoch", orderNo: 0, wantErr: shard.ErrOutOfRange},
		{name: "negative", orderNo: -5, wantErr: shard.ErrOutOfRange},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := topo.Route(tc.orderNo)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Route(%d) error = %v, want %v", tc.orderNo, err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("Route(%d) = %+v, want %+v", tc.orderNo, got, tc.want)
			}
		})
	}
}

func TestNumbersRouteBackToTheirShard(t *testing.T) {
	t.Parallel()
	topo := twoEpochs()
	tests := []struct {
		name string
		loc  shard.Location
		want shard.NumberRange
	}{
		{name: "epoch 0 index 0", loc: shard.Location{Shard: "a", EpochFirstOrderNo: 1, Index: 0, Count: 2},
			want: shard.NumberRange{EpochFirstOrderNo: 1, First: 2, Step: 2, Limit: 1001}},
		{name: "epoch 0 index 1", loc: shard.Location{Shard: "b", EpochFirstOrderNo: 1, Index: 1, Count: 2},
			want: shard.NumberRange{EpochFirstOrderNo: 1, First: 1, Step: 2, Limit: 1001}},
		{name: "epoch 1 index 0", loc: shard.Location{Shard: "a", EpochFirstOrderNo: 1001, Index: 0, Count: 3},
			want: shard.NumberRange{EpochFirstOrderNo: 1001, First: 1002, Step: 3}},
		{name: "epoch 1 index 2", loc: shard.Location{Shard: "c", EpochFirstOrderNo: 1001, Index: 2, Count: 3},
			want: shard.NumberRange{EpochFirstOrderNo: 1001, First: 1001, Step: 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := topo.Numbers(tc.loc)
			if err != nil || got != tc.want {
				t.Fatalf("Numbers(%+v) = %+v (%v), want %+v", tc.loc, got, err, tc.want)
			}
			for n := got.First; n < got.First+50*got.Step; n += got.Step {
				if got.Limit != 0 && n >= got.Limit {
					break
				}
				loc, err := topo.Route(n)
				if err != nil || loc != tc.loc {
					t.Fatalf("number %d routes to %+v (%v), want %+v", n, loc, err, tc.loc)
				}
			}
		})
	}
}

func TestPlaceRequestSpreadsEvenly(t *testing.T) {
	t.Parallel()
	for _, shards := range []int{2, 3, 4} {
		topo := shard.Topology{Epochs: []shard.Epoch{{FirstOrderNo: 1}}}
		for i := range shards {
			name := string(rune('a' + i))
			topo.Shards = append(topo.Shards, shard.Spec{Name: name, DSN: "x"})
			topo.Epochs[0].Shards = append(topo.Epochs[0].Shards, name)
		}
		counts := map[string]int{}
		const n = 10000
		for i := range n {
			loc := topo.PlaceRequest("req-" + strings.Repeat("x", i%7) + string(rune('0'+i%10)) + "-" + itoa(i))
			counts[loc.Shard]++
			if again := topo.PlaceRequest("req-" + strings.Repeat("x", i%7) + string(rune('0'+i%10)) + "-" + itoa(i)); again != loc {
				t.Fatalf("PlaceRequest is not stable: %+v then %+v", loc, again)
			}
		}
		for name, c := range counts {
			share := float64(c) / n
			want := 1 / float64(shards)
			if share < want-0.02 || share > want+0.02 {
				t.Errorf("%d shards: shard %s got %.3f of requests, want %.3f ± 0.02", shards, name, share, want)
			}
		}
	}
}

func itoa(i int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + i%10)}, b...)
		i /= 10
		if i == 0 {
			return string(b)
		}
	}
}

func TestParseTopology(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		json    string
		wantErr string
	}{
		{name: "valid", json: `{"shards":[{"name":"a","dsn":"d"},{"name":"b","dsn":"d"}],"epochs":[{"firstOrderNo":1,"shards":["a","b"]},{"firstOrderNo":50,"shards":["a"]}]}`},
		{name: "unknown field", json: `{"shards":[{"name":"a","dsn":"d"}],"epochs":[{"firstOrderNo":1,"shards":["a"]}],"extra":1}`, wantErr: "unknown field"},
		{name: "no shards", json: `{"shards":[],"epochs":[{"firstOrderNo":1,"shards":["a"]}]}`, wantErr: "no shards"},
		{name: "no epochs", json: `{"shards":[{"name":"a","dsn":"d"}],"epochs":[]}`, wantErr: "no epochs"},
		{name: "empty shard list", json: `{"shards":[{"name":"a","dsn":"d"}],"epochs":[{"firstOrderNo":1,"shards":[]}]}`, wantErr: "empty shard list"},
		{name: "unordered epochs", json: `{"shards":[{"name":"a","dsn":"d"}],"epochs":[{"firstOrderNo":10,"shards":["a"]},{"firstOrderNo":5,"shards":["a"]}]}`, wantErr: "must be above"},
		{name: "overlapping epochs", json: `{"shards":[{"name":"a","dsn":"d"}],"epochs":[{"firstOrderNo":10,"shards":["a"]},{"firstOrderNo":10,"shards":["a"]}]}`, wantErr: "must be above"},
		{name: "zero first order number", json: `{"shards":[{"name":"a","dsn":"d"}],"epochs":[{"firstOrderNo":0,"shards":["a"]}]}`, wantErr: "at least 1"},
		{name: "unknown shard in epoch", json: `{"shards":[{"name":"a","dsn":"d"}],"epochs":[{"firstOrderNo":1,"shards":["z"]}]}`, wantErr: `unknown shard "z"`},
		{name: "shard twice in epoch", json: `{"shards":[{"name":"a","dsn":"d"}],"epochs":[{"firstOrderNo":1,"shards":["a","a"]}]}`, wantErr: "listed twice"},
		{name: "duplicate shard", json: `{"shards":[{"name":"a","dsn":"d"},{"name":"a","dsn":"e"}],"epochs":[{"firstOrderNo":1,"shards":["a"]}]}`, wantErr: "defined twice"},
		{name: "missing dsn", json: `{"shards":[{"name":"a"}],"epochs":[{"firstOrderNo":1,"shards":["a"]}]}`, wantErr: "no dsn"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := shard.ParseTopology([]byte(tc.json))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseTopology: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseTopology error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestExtends(t *testing.T) {
	t.Parallel()
	base := twoEpochs()
	added := twoEpochs()
	added.Shards = append(added.Shards, shard.Spec{Name: "d", DSN: "x"})
	added.Epochs = append(added.Epochs, shard.Epoch{FirstOrderNo: 5000, Shards: []string{"a", "b", "c", "d"}})
	tests := []struct {
		name    string
		next    func() shard.Topology
		wantErr string
	}{
		{name: "unchanged", next: twoEpochs},
		{name: "a shard and an epoch added", next: func() shard.Topology { return added }},
		{name: "a shard removed", next: func() shard.Topology {
			t := twoEpochs()
			t.Shards = t.Shards[:2]
			return t
		}, wantErr: `shard "c" is missing`},
		{name: "a dsn changed", next: func() shard.Topology {
			t := twoEpochs()
			t.Shards[0].DSN = "elsewhere"
			return t
		}, wantErr: "changed its dsn"},
		{name: "the oldest epoch retired", next: func() shard.Topology {
			t := twoEpochs()
			t.Epochs = t.Epochs[1:]
			return t
		}},
		{name: "every old epoch retired after a newer one was added (a reload that missed the add)", next: func() shard.Topology {
			t := twoEpochs()
			t.Epochs = []shard.Epoch{{FirstOrderNo: 9000, Shards: []string{"a"}}}
			return t
		}},
		{name: "the current epoch replaced by an older start", next: func() shard.Topology {
			t := twoEpochs()
			t.Epochs = []shard.Epoch{{FirstOrderNo: t.Epochs[0].FirstOrderNo, Shards: []string{"a"}}}
			return t
		}, wantErr: "only the oldest epochs can be retired"},
		{name: "a newer epoch dropped", next: func() shard.Topology {
			t := twoEpochs()
			t.Epochs = t.Epochs[:1]
			return t
		}, wantErr: "only the oldest epochs can be retired"},
		{name: "an epoch's shards changed", next: func() shard.Topology {
			t := twoEpochs()
			t.Epochs[0].Shards = []string{"b", "a"}
			return t
		}, wantErr: "would route elsewhere"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.next().Extends(base)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Extends: %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestPreviousPlacement(t *testing.T) {
	t.Parallel()
	added := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	topo := twoEpochs()
	topo.Epochs[1].AddedAt = &added
	// Find a request the two epochs place differently, and one they agree on.
	var moved, same string
	for i := 0; moved == "" || same == ""; i++ {
		id := "req-" + itoa(i)
		prev := shard.Topology{Shards: topo.Shards, Epochs: topo.Epochs[:1]}
		if prev.PlaceRequest(id).Shard != topo.PlaceRequest(id).Shard {
			moved = id
		} else {
			same = id
		}
	}
	tests := []struct {
		name string
		topo shard.Topology
		id   string
		now  time.Time
		want bool
	}{
		{name: "placed elsewhere, soon after the add", topo: topo, id: moved, now: added.Add(time.Hour), want: true},
		{name: "placed elsewhere, after the window", topo: topo, id: moved, now: added.Add(25 * time.Hour)},
		{name: "placed on the same shard", topo: topo, id: same, now: added.Add(time.Hour)},
		{name: "an epoch without an add time", topo: twoEpochs(), id: moved, now: added},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			loc, ok := tc.topo.PreviousPlacement(tc.id, tc.now, 24*time.Hour)
			if ok != tc.want {
				t.Fatalf("PreviousPlacement = %+v, %v; want %v", loc, ok, tc.want)
			}
			if ok && (loc.EpochFirstOrderNo != 1 || loc.Count != 2) {
				t.Errorf("location %+v, want one in the first epoch", loc)
			}
		})
	}
}

// A location names its epoch by key, so it keeps meaning the same numbers
// in a later topology that retired older epochs, and a location whose epoch
// is gone (or that is not a shard of it) is an error rather than another
// epoch's numbers or an index out of range.
func TestNumbersByEpochKey(t *testing.T) {
	t.Parallel()
	topo := twoEpochs()
	loc := topo.PlaceRequest("req-1")
	want, err := topo.Numbers(loc)
	if err != nil {
		t.Fatal(err)
	}
	retired, err := topo.Retire(1)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		topo    shard.Topology
		loc     shard.Location
		want    shard.NumberRange
		wantErr error
	}{
		{name: "same epoch after the oldest was retired", topo: retired, loc: loc, want: want},
		{name: "retired epoch", topo: retired, loc: shard.Location{Shard: "a", EpochFirstOrderNo: 1, Index: 0, Count: 2}, wantErr: shard.ErrUnknownEpoch},
		{name: "never an epoch", topo: topo, loc: shard.Location{Shard: "a", EpochFirstOrderNo: 7, Index: 0, Count: 2}, wantErr: shard.ErrUnknownEpoch},
		{name: "count of another epoch", topo: topo, loc: shard.Location{Shard: "a", EpochFirstOrderNo: 1001, Index: 0, Count: 2}},
		{name: "shard not at that index", topo: topo, loc: shard.Location{Shard: "b", EpochFirstOrderNo: 1001, Index: 0, Count: 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.topo.Numbers(tc.loc)
			switch {
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("Numbers(%+v) error = %v, want %v", tc.loc, err, tc.wantErr)
			case tc.wantErr == nil && tc.want == (shard.NumberRange{}) && err == nil:
				t.Fatalf("Numbers(%+v) = %+v, want an error", tc.loc, got)
			case tc.want != (shard.NumberRange{}) && (err != nil || got != tc.want):
				t.Fatalf("Numbers(%+v) = %+v (%v), want %+v", tc.loc, got, err, tc.want)
			}
		})
	}
}

func TestRetire(t *testing.T) {
	t.Parallel()
	three := twoEpochs()
	three.Epochs = append(three.Epochs, shard.Epoch{FirstOrderNo: 5000, Shards: []string{"c"}})
	tests := []struct {
		name       string
		topo       shard.Topology
		first      int64
		wantFirsts []int64
		wantErr    string
	}{
		{name: "the oldest", topo: three, first: 1, wantFirsts: []int64{1001, 5000}},
		{name: "one in the middle", topo: three, first: 1001, wantErr: "only the oldest epoch (from order 1)"},
		{name: "the current one", topo: twoEpochs(), first: 1001, wantErr: "is the current one"},
		{name: "an unknown key", topo: three, first: 2, wantErr: "no shard epoch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			next, err := tc.topo.Retire(tc.first)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Retire(%d) error = %v, want %q", tc.first, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var firsts []int64
			for _, e := range next.Epochs {
				firsts = append(firsts, e.FirstOrderNo)
			}
			if !slices.Equal(firsts, tc.wantFirsts) {
				t.Errorf("epochs after Retire(%d): %v, want %v", tc.first, firsts, tc.wantFirsts)
			}
			if err := next.Extends(tc.topo); err != nil {
				t.Errorf("the retired topology does not extend the old one: %v", err)
			}
		})
	}
}
