package status

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
)

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

func sampleReport() Report {
	fresh := 0.42
	return Report{
		CheckedAt:  time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC),
		Problems:   []Problem{{Check: "outbox", Subject: "shard-1", Message: "3 FAILED rows"}},
		Thresholds: Thresholds{MaxPendingAgeSeconds: 30, MaxLag: 1000},
		Shards: []Shard{{Shard: "shard-0", Reachable: true, Owner: "relay-a"},
			{Shard: "shard-1", Reachable: true, Failed: 3, Pending: 12345, OldestPendingAgeSeconds: 20, Owner: "relay-a"},
			{Shard: "shard-2", Error: "dial tcp: connection refused"}},
		ConsumerGroups: []GroupLag{{Group: "order-projector", Topics: []TopicLag{{Topic: "orders.internal.v1", Partitions: 12, Lag: 7, WorstPartition: 3, WorstPartitionLag: 5}}}},
		DLQ:            DeadLetters{Topic: "orders.internal.dlq.v1"},
		Prometheus:     Prometheus{URL: "http://127.0.0.1:9095", Reachable: true, FreshnessP99Seconds: &fresh},
	}
}

// Colour is there only when asked for, and it changes nothing but the
// escape codes: the columns line up the same.
func TestWriteTextColour(t *testing.T) {
	t.Parallel()
	var plain, coloured bytes.Buffer
	WriteText(&plain, sampleReport(), NewPalette(false))
	WriteText(&coloured, sampleReport(), NewPalette(true))
	if ansi.MatchString(plain.String()) {
		t.Errorf("colour off, yet escape codes:\n%q", plain.String())
	}
	if !strings.Contains(coloured.String(), "\x1b[31;1m") || !strings.Contains(coloured.String(), "\x1b[32m") {
		t.Errorf("colour on, yet no red and green:\n%q", coloured.String())
	}
	if got := ansi.ReplaceAllString(coloured.String(), ""); got != plain.String() {
		t.Errorf("coloured text without its codes differs from the plain text:\n%s\n---\n%s", got, plain.String())
	}
	for _, want := range []string{"NEEDS ATTENTION: 1 problem(s)", "shard-2  DOWN", "12345", "3 (5)", "freshness p99 (5m) 420ms", "outbox shard-1: 3 FAILED rows"} {
		if !strings.Contains(plain.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, plain.String())
		}
	}
	// Columns: every row of the shard table starts its PENDING column at
	// the header's offset.
	lines := strings.Split(plain.String(), "\n")
	var col int
	for _, l := range lines {
		if strings.Contains(l, "PENDING") && strings.Contains(l, "SHARD") {
			col = strings.Index(l, "PENDING")
		}
		if strings.HasPrefix(l, "  shard-1") && col > 0 && !strings.HasPrefix(l[col:], "12345") {
			t.Errorf("PENDING column not aligned at %d:\n%s", col, plain.String())
		}
	}
}
