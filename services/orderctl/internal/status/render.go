package status

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fatih/color"
)

// Palette colours the text report; its zero value, or one made with
// colour off, prints plain text.
type Palette struct {
	ok, warn, bad, head *color.Color
}

// NewPalette returns the report's colours, switched on or off (the caller
// decides: a terminal and no NO_COLOR).
func NewPalette(enabled bool) Palette {
	p := Palette{ok: color.New(color.FgGreen), warn: color.New(color.FgYellow), bad: color.New(color.FgRed, color.Bold),
		head: color.New(color.Bold)}
	for _, c := range []*color.Color{p.ok, p.warn, p.bad, p.head} {
		if enabled {
			c.EnableColor()
		} else {
			c.DisableColor()
		}
	}
	return p
}

func paint(c *color.Color, s string) string {
	if c == nil {
		return s
	}
	return c.Sprint(s)
}

// cell is one table cell: its text and its colour (nil: none). Widths are
// measured on the text, before colouring, so escape codes do not shift the
// columns.
type cell struct {
	text  string
	color *color.Color
}

func writeTable(w io.Writer, p Palette, indent string, header []string, rows [][]cell) {
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c.text))
		}
	}
	line := func(cells []cell) {
		var b strings.Builder
		b.WriteString(indent)
		for i, c := range cells {
			b.WriteString(paint(c.color, c.text))
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c.text)+2))
			}
		}
		fmt.Fprintln(w, b.String())
	}
	hs := make([]cell, len(header))
	for i, h := range header {
		hs[i] = cell{text: h, color: p.head}
	}
	line(hs)
	for _, r := range rows {
		line(r)
	}
}

// WriteText prints the report for a person: the verdict first, then one
// table per part, then the problems.
func WriteText(w io.Writer, r Report, p Palette) {
	verdict := paint(p.ok, "OK: nothing needs attention")
	if !r.Healthy {
		verdict = paint(p.bad, fmt.Sprintf("NEEDS ATTENTION: %d problem(s)", len(r.Problems)))
	}
	fmt.Fprintf(w, "orderflow status at %s  %s\n\n", r.CheckedAt.Format(time.RFC3339), verdict)

	fmt.Fprintln(w, paint(p.head, "Shards"))
	var rows [][]cell
	maxAge := time.Duration(r.Thresholds.MaxPendingAgeSeconds * float64(time.Second))
	for _, s := range r.Shards {
		if !s.Reachable || s.Error != "" {
			state := "DOWN"
			if s.Reachable {
				state = "ERROR"
			}
			rows = append(rows, []cell{{s.Shard, nil}, {state, p.bad}, {"-", nil}, {"-", nil}, {"-", nil}, {oneLine(s.Error, 70), p.bad}})
			continue
		}
		age := time.Duration(s.OldestPendingAgeSeconds * float64(time.Second)).Round(time.Second)
		ageColor := p.ok
		if age > maxAge {
			ageColor = p.bad
		} else if age > maxAge/2 {
			ageColor = p.warn
		}
		failedColor := p.ok
		if s.Failed > 0 {
			failedColor = p.bad
		}
		owner, ownerColor := s.Owner, p.ok
		if owner == "" {
			owner, ownerColor = "(none)", p.bad
		}
		rows = append(rows, []cell{{s.Shard, nil}, {"up", p.ok}, {strconv.FormatInt(s.Pending, 10), nil}, {age.String(), ageColor},
			{strconv.FormatInt(s.Failed, 10), failedColor}, {owner, ownerColor}})
	}
	writeTable(w, p, "  ", []string{"SHARD", "STATE", "PENDING", "OLDEST PENDING", "FAILED", "OWNER"}, rows)

	fmt.Fprintf(w, "\n%s (attention above %d)\n", paint(p.head, "Consumer lag"), r.Thresholds.MaxLag)
	rows = nil
	for _, g := range r.ConsumerGroups {
		if g.Error != "" {
			rows = append(rows, []cell{{g.Group, nil}, {"-", nil}, {"ERROR", p.bad}, {oneLine(g.Error, 70), p.bad}})
			continue
		}
		for _, t := range g.Topics {
			lagColor := p.ok
			if t.Lag > r.Thresholds.MaxLag {
				lagColor = p.bad
			} else if t.Lag > 0 {
				lagColor = p.warn
			}
			worst := "-"
			if t.WorstPartition >= 0 {
				worst = fmt.Sprintf("%d (%d)", t.WorstPartition, t.WorstPartitionLag)
			}
			rows = append(rows, []cell{{g.Group, nil}, {t.Topic, nil}, {strconv.FormatInt(t.Lag, 10), lagColor}, {worst, nil}})
		}
	}
	writeTable(w, p, "  ", []string{"GROUP", "TOPIC", "LAG", "WORST PARTITION (LAG)"}, rows)

	fmt.Fprintf(w, "\n%s %s: ", paint(p.head, "Dead letters"), r.DLQ.Topic)
	switch {
	case r.DLQ.Error != "":
		fmt.Fprintln(w, paint(p.bad, "not readable: "+oneLine(r.DLQ.Error, 70)))
	case r.DLQ.Unresolved > 0:
		fmt.Fprintln(w, paint(p.bad, fmt.Sprintf("%d not worked off", r.DLQ.Unresolved))+fmt.Sprintf(" (%d in all)", r.DLQ.Total))
	default:
		fmt.Fprintln(w, paint(p.ok, "none open")+fmt.Sprintf(" (%d in all)", r.DLQ.Total))
	}

	promURL := r.Prometheus.URL
	if promURL == "" {
		promURL = "(no URL)"
	}
	fmt.Fprintf(w, "%s %s: ", paint(p.head, "Prometheus"), promURL)
	if !r.Prometheus.Reachable {
		fmt.Fprintln(w, paint(p.warn, "Prometheus unreachable")+" ("+oneLine(r.Prometheus.Error, 70)+"); freshness and alerts not checked")
	} else {
		fresh := paint(p.warn, "no data")
		if f := r.Prometheus.FreshnessP99Seconds; f != nil {
			d := time.Duration(*f * float64(time.Second)).Round(time.Millisecond)
			fresh = paint(p.ok, d.String())
			if *f > 1 { // the read_freshness SLO: 99 % within 1 s
				fresh = paint(p.bad, d.String())
			}
		}
		alerts := paint(p.ok, "none")
		if n := len(r.Prometheus.FiringAlerts); n > 0 {
			alerts = paint(p.bad, strconv.Itoa(n))
		}
		fmt.Fprintf(w, "freshness p99 (5m) %s, firing alerts %s\n", fresh, alerts)
	}

	if len(r.Problems) > 0 {
		fmt.Fprintf(w, "\n%s\n", paint(p.bad, "Needs attention"))
		for _, pr := range r.Problems {
			fmt.Fprintf(w, "  %s %s\n", paint(p.bad, "✗ "+pr.Check+" "+pr.Subject+":"), pr.Message)
		}
	}
}

// WriteJSON prints the report as one indented JSON document.
func WriteJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func oneLine(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if utf8.RuneCountInString(s) > n {
		return string([]rune(s)[:n]) + "..."
	}
	return s
}
