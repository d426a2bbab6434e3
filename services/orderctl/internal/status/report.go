package status

import (
	"fmt"
	"time"
)

// Report is the outcome of one Check; `orderctl status --json` prints it as
// is, so its JSON field names are a documented interface (README,
// docs/runbooks/outbox.md): add fields, never rename them.
type Report struct {
	// CheckedAt is when the check started (UTC).
	CheckedAt time.Time `json:"checkedAt"`
	// Healthy is true when Problems is empty.
	Healthy bool `json:"healthy"`
	// Problems are what needs attention, one entry each.
	Problems       []Problem   `json:"problems"`
	Thresholds     Thresholds  `json:"thresholds"`
	Shards         []Shard     `json:"shards"`
	ConsumerGroups []GroupLag  `json:"consumerGroups"`
	DLQ            DeadLetters `json:"dlq"`
	Prometheus     Prometheus  `json:"prometheus"`
}

// Problem is one thing that needs attention.
type Problem struct {
	// Check is the part that found it: shard, outbox, consumer-lag, dlq
	// or alert.
	Check string `json:"check"`
	// Subject names what is affected: a shard, group/topic, the DLQ
	// topic, an alert.
	Subject string `json:"subject"`
	Message string `json:"message"`
}

func (p Problem) String() string { return fmt.Sprintf("%s %s: %s", p.Check, p.Subject, p.Message) }

// Thresholds are the limits the report was judged by.
type Thresholds struct {
	MaxPendingAgeSeconds float64 `json:"maxPendingAgeSeconds"`
	MaxLag               int64   `json:"maxLag"`
}

// Shard is one shard's reachability and outbox.
type Shard struct {
	Shard string `json:"shard"`
	// Reachable: the shard answered a ping within the ping timeout.
	Reachable bool `json:"reachable"`
	// Error says why the shard could not be pinged or read ("" when it was).
	Error                   string  `json:"error,omitempty"`
	Pending                 int64   `json:"pending"`
	OldestPendingAgeSeconds float64 `json:"oldestPendingAgeSeconds"`
	Failed                  int64   `json:"failed"`
	// Owner is the relay instance holding the shard's lock, "" when none.
	Owner string `json:"owner"`
}

// GroupLag is a consumer group's lag on each topic.
type GroupLag struct {
	Group  string     `json:"group"`
	Topics []TopicLag `json:"topics"`
	// Error says why the lag could not be read.
	Error string `json:"error,omitempty"`
}

// TopicLag is a group's lag on one topic: messages between its committed
// offsets and the high-water marks (from the oldest retained offset where
// the group committed nothing).
type TopicLag struct {
	Topic      string `json:"topic"`
	Partitions int    `json:"partitions"`
	// Lag is the sum over the partitions.
	Lag int64 `json:"lag"`
	// WorstPartition is the partition with the largest lag (-1 when the
	// topic has none) and WorstPartitionLag its lag.
	WorstPartition    int32 `json:"worstPartition"`
	WorstPartitionLag int64 `json:"worstPartitionLag"`
}

// DeadLetters counts the dead-letter topic's entries.
type DeadLetters struct {
	Topic string `json:"topic"`
	// Unresolved entries are not worked off (replayed or discarded) yet.
	Unresolved int `json:"unresolved"`
	// Total counts every entry retained, worked off or not.
	Total int    `json:"total"`
	Error string `json:"error,omitempty"`
}

// Prometheus is what Prometheus says, when it answers.
type Prometheus struct {
	URL string `json:"url"`
	// Reachable is false when no URL is set or Prometheus did not answer;
	// that alone needs no attention.
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// FreshnessP99Seconds is the 99th percentile of the projector's
	// commit-to-document time over the last 5 minutes; null without data.
	FreshnessP99Seconds *float64 `json:"freshnessP99Seconds"`
	// FiringAlerts are the alerts firing now (pending ones are left out).
	FiringAlerts []Alert `json:"firingAlerts"`
}

// Alert is one firing alert.
type Alert struct {
	Name     string            `json:"name"`
	Labels   map[string]string `json:"labels"`
	ActiveAt time.Time         `json:"activeAt"`
	Summary  string            `json:"summary,omitempty"`
	Runbook  string            `json:"runbook,omitempty"`
}

// problems lists what needs attention in r.
func (c *Checker) problems(r Report) []Problem {
	out := []Problem{}
	add := func(check, subject, format string, args ...any) {
		out = append(out, Problem{Check: check, Subject: subject, Message: fmt.Sprintf(format, args...)})
	}
	for _, s := range r.Shards {
		switch {
		case !s.Reachable:
			add("shard", s.Shard, "unreachable: %s", s.Error)
			continue
		case s.Error != "":
			add("shard", s.Shard, "outbox not readable: %s", s.Error)
			continue
		}
		if s.Owner == "" {
			add("outbox", s.Shard, "no relay owns the shard: its outbox is not published")
		}
		if s.Failed > 0 {
			add("outbox", s.Shard, "%d FAILED rows (orderctl outbox list --status FAILED)", s.Failed)
		}
		if age := time.Duration(s.OldestPendingAgeSeconds * float64(time.Second)); age > c.cfg.MaxPendingAge {
			add("outbox", s.Shard, "oldest pending row is %s old (more than %s)", age.Round(time.Second), c.cfg.MaxPendingAge)
		}
	}
	for _, g := range r.ConsumerGroups {
		if g.Error != "" {
			add("consumer-lag", g.Group, "lag not readable: %s", g.Error)
			continue
		}
		for _, t := range g.Topics {
			if t.Lag > c.cfg.MaxLag {
				add("consumer-lag", g.Group+"/"+t.Topic, "lag %d messages (more than %d; worst partition %d: %d)",
					t.Lag, c.cfg.MaxLag, t.WorstPartition, t.WorstPartitionLag)
			}
		}
	}
	switch {
	case r.DLQ.Error != "":
		add("dlq", r.DLQ.Topic, "dead letters not readable: %s", r.DLQ.Error)
	case r.DLQ.Unresolved > 0:
		add("dlq", r.DLQ.Topic, "%d dead letters not worked off (orderctl dlq list)", r.DLQ.Unresolved)
	}
	for _, a := range r.Prometheus.FiringAlerts {
		msg := "firing"
		if a.Summary != "" {
			msg += ": " + a.Summary
		}
		if a.Runbook != "" {
			msg += " (" + a.Runbook + ")"
		}
		add("alert", a.Name, "%s", msg)
	}
	return out
}
