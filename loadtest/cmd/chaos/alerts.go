package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Budgets of the alert assertions: a fault's cause alert must fire within
// detectBudget of the fault (the project's promise for every cause alert)
// and resolve within resolveBudget of the recovery.
const (
	detectBudget  = 2 * time.Minute
	resolveBudget = 3 * time.Minute
	alertPoll     = time.Second
)

// wantAlert is a cause alert a fault must raise: its name and the labels
// it must carry (a subset of the alert's).
type wantAlert struct {
	name   string
	labels map[string]string
}

func (w wantAlert) String() string {
	if len(w.labels) == 0 {
		return w.name
	}
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(w.labels)) {
		kv = append(kv, k+"="+w.labels[k])
	}
	return w.name + "{" + strings.Join(kv, ",") + "}"
}

// alertSpan is one stretch of time an alert was firing, as polled: from
// the first poll that saw it firing to the first that did not (zero while
// it still fires).
type alertSpan struct {
	name       string
	labels     map[string]string
	start, end time.Time
}

func (s alertSpan) matches(w wantAlert) bool {
	if s.name != w.name {
		return false
	}
	for k, v := range w.labels {
		if s.labels[k] != v {
			return false
		}
	}
	return true
}

func (s alertSpan) String() string { return wantAlert{name: s.name, labels: s.labels}.String() }

// alertWatch polls the private Prometheus's /api/v1/alerts and keeps every
// firing span it saw, so that detection and resolution are measured the
// same way whatever the suite does meanwhile.
type alertWatch struct {
	url    string
	client *http.Client

	mu      sync.Mutex
	spans   []*alertSpan
	active  map[string]*alertSpan // firing now, by name and labels
	pending map[string]bool       // alerts seen pending, by name and labels
	polls   int
	errors  int
	lastErr string
}

func newAlertWatch(prometheusURL string) *alertWatch {
	return &alertWatch{url: prometheusURL + "/api/v1/alerts", client: &http.Client{Timeout: 3 * time.Second},
		active: map[string]*alertSpan{}, pending: map[string]bool{}}
}

// promAlert is one alert of the /api/v1/alerts answer.
type promAlert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

func (w *alertWatch) fetch(ctx context.Context) ([]promAlert, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Data   struct {
			Alerts []promAlert `json:"alerts"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("decoding the alerts: %w", err)
	}
	if resp.StatusCode != http.StatusOK || body.Status != "success" {
		return nil, fmt.Errorf("alerts API: HTTP %d, status %q", resp.StatusCode, body.Status)
	}
	return body.Data.Alerts, nil
}

// run polls until ctx ends.
func (w *alertWatch) run(ctx context.Context) {
	t := time.NewTicker(alertPoll)
	defer t.Stop()
	for {
		w.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *alertWatch) poll(ctx context.Context) {
	alerts, err := w.fetch(ctx)
	if err != nil {
		w.mu.Lock()
		defer w.mu.Unlock()
		if ctx.Err() == nil {
			w.errors++
			w.lastErr = err.Error()
		}
		return // a failed poll keeps what fired: it says nothing new
	}
	w.observe(alerts, time.Now())
}

// observe records one answer of the alerts API, polled at now.
func (w *alertWatch) observe(alerts []promAlert, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.polls++
	seen := map[string]bool{}
	for _, a := range alerts {
		name := a.Labels["alertname"]
		labels := maps.Clone(a.Labels)
		delete(labels, "alertname")
		key := wantAlert{name: name, labels: labels}.String()
		switch a.State {
		case "firing":
			seen[key] = true
			if w.active[key] == nil {
				s := &alertSpan{name: name, labels: labels, start: now}
				w.active[key] = s
				w.spans = append(w.spans, s)
			}
		case "pending":
			w.pending[key] = true
		}
	}
	for key, s := range w.active {
		if !seen[key] {
			s.end = now
			delete(w.active, key)
		}
	}
}

// quiet is true when the last poll succeeded and saw nothing firing or
// pending (pending alerts are those whose `for` runs).
func (w *alertWatch) quiet(ctx context.Context) bool {
	alerts, err := w.fetch(ctx)
	return err == nil && len(alerts) == 0
}

// firing lists the alerts firing now.
func (w *alertWatch) firing() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Sorted(maps.Keys(w.active))
}

// firedIn lists every alert that fired at some time in [from, to) (or
// still fires), each once, but those matching one of except.
func (w *alertWatch) firedIn(from, to time.Time, except ...wantAlert) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	set := map[string]bool{}
	for _, s := range w.spans {
		if s.start.Before(to) && (s.end.IsZero() || s.end.After(from)) && !slices.ContainsFunc(except, s.matches) {
			set[s.String()] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// resetPending forgets the alerts seen pending so far.
func (w *alertWatch) resetPending() {
	w.mu.Lock()
	defer w.mu.Unlock()
	clear(w.pending)
}

// pendingSeen lists every alert seen pending since the last resetPending.
func (w *alertWatch) pendingSeen() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Sorted(maps.Keys(w.pending))
}

// firedAfter is when the first alert matching want started to fire at or
// after t (false when none did).
func (w *alertWatch) firedAfter(want wantAlert, t time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.spans {
		if s.matches(want) && !s.start.Before(t) {
			return s.start, true
		}
	}
	return time.Time{}, false
}

// firingNow is true while an alert matching want fires.
func (w *alertWatch) firingNow(want wantAlert) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.active {
		if s.matches(want) {
			return true
		}
	}
	return false
}

// resolvedAfter is when the alerts matching want that were firing at t
// stopped: the end of the last of them, t itself when none was; false
// while one still fires. An alert that starts firing after t is a new
// one (another fault's, or a relapse) and does not count.
func (w *alertWatch) resolvedAfter(want wantAlert, t time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	last := t
	for _, s := range w.spans {
		if !s.matches(want) || s.start.After(t) || (!s.end.IsZero() && s.end.Before(t)) {
			continue
		}
		if s.end.IsZero() {
			return time.Time{}, false
		}
		if s.end.After(last) {
			last = s.end
		}
	}
	return last, true
}

// health is the poller's own record: polls that answered and that failed.
func (w *alertWatch) health() (polls, errors int, lastErr string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.polls, w.errors, w.lastErr
}
