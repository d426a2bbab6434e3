package main

import (
	"slices"
	"testing"
	"time"
)

func TestAlertWatchSpans(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	shard := func(name, state string) promAlert {
		return promAlert{Labels: map[string]string{"alertname": "ShardUnreachable", "shard": name, "severity": "page"}, State: state}
	}
	kafka := func(state string) promAlert {
		return promAlert{Labels: map[string]string{"alertname": "KafkaUnreachable"}, State: state}
	}
	// Polls at 0..9 s: shard-1 pending at 1, firing 2-4, gone at 5, firing
	// again 7-8; shard-0 firing from 3 on; Kafka pending only.
	polls := [][]promAlert{
		{},
		{shard("shard-1", "pending"), kafka("pending")},
		{shard("shard-1", "firing")},
		{shard("shard-1", "firing"), shard("shard-0", "firing")},
		{shard("shard-1", "firing"), shard("shard-0", "firing")},
		{shard("shard-0", "firing")},
		{shard("shard-0", "firing")},
		{shard("shard-1", "firing"), shard("shard-0", "firing")},
		{shard("shard-1", "firing"), shard("shard-0", "firing")},
		{shard("shard-0", "firing")},
	}
	w := newAlertWatch("http://unused")
	for i, p := range polls {
		w.observe(p, at(i))
	}
	shard1 := wantAlert{name: "ShardUnreachable", labels: map[string]string{"shard": "shard-1"}}
	shard0 := wantAlert{name: "ShardUnreachable", labels: map[string]string{"shard": "shard-0"}}
	anyShard := wantAlert{name: "ShardUnreachable"}

	tests := []struct {
		name   string
		got    func() (time.Time, bool)
		want   time.Time
		wantOK bool
	}{
		{name: "first firing of shard-1", got: func() (time.Time, bool) { return w.firedAfter(shard1, at(0)) }, want: at(2), wantOK: true},
		{name: "a later firing counts from its own start", got: func() (time.Time, bool) { return w.firedAfter(shard1, at(3)) }, want: at(7), wantOK: true},
		{name: "labels narrow the match", got: func() (time.Time, bool) { return w.firedAfter(shard0, at(0)) }, want: at(3), wantOK: true},
		{name: "no labels match any shard", got: func() (time.Time, bool) { return w.firedAfter(anyShard, at(0)) }, want: at(2), wantOK: true},
		{name: "pending is not firing", got: func() (time.Time, bool) { return w.firedAfter(wantAlert{name: "KafkaUnreachable"}, at(0)) }},
		{name: "resolved when what fired at the time ended", got: func() (time.Time, bool) { return w.resolvedAfter(shard1, at(3)) }, want: at(5), wantOK: true},
		{name: "a later firing is not part of the resolution", got: func() (time.Time, bool) { return w.resolvedAfter(anyShard, at(2)) }, want: at(5), wantOK: true},
		{name: "resolved after the firing span that covers the time", got: func() (time.Time, bool) { return w.resolvedAfter(shard1, at(7)) }, want: at(9), wantOK: true},
		{name: "nothing firing since is resolved at once", got: func() (time.Time, bool) { return w.resolvedAfter(shard1, at(9)) }, want: at(9), wantOK: true},
		{name: "still firing is not resolved", got: func() (time.Time, bool) { return w.resolvedAfter(shard0, at(4)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := tc.got()
			if ok != tc.wantOK || !got.Equal(tc.want) {
				t.Errorf("= %v %v, want %v %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}

	if got, want := w.firedIn(at(5), at(7)), []string{"ShardUnreachable{severity=page,shard=shard-0}"}; !slices.Equal(got, want) {
		t.Errorf("firedIn(5 s, 7 s) = %v, want %v", got, want)
	}
	if got, want := w.firedIn(at(0), at(10), shard0), []string{"ShardUnreachable{severity=page,shard=shard-1}"}; !slices.Equal(got, want) {
		t.Errorf("firedIn except shard-0 = %v, want %v", got, want)
	}
	if !w.firingNow(shard0) || w.firingNow(shard1) {
		t.Errorf("firing now: shard-0 %v, shard-1 %v; want true, false", w.firingNow(shard0), w.firingNow(shard1))
	}
	if got := w.pendingSeen(); len(got) != 2 {
		t.Errorf("pending seen = %v, want shard-1's and Kafka's", got)
	}
}
