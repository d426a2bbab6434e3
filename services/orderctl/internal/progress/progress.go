// Package progress exports the progress of a long orderctl run (a read
// model rebuild, a dead-letter replay) to Prometheus while it runs.
//
// Why a listener in orderctl rather than pushing to a service: a repair
// is one process that runs for minutes, often while the services it
// repairs are unhealthy, and the operator who starts it chooses whether
// to watch it. `--metrics-listen ADDR` serves /metrics for as long as the
// run (plus --metrics-linger, so the last values reach at least one
// scrape); Prometheus' `orderctl` job scrapes the local address and no
// alert looks at that job, so a target that is down because no repair
// runs pages nobody.
package progress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Commands label the series of each kind of run.
const (
	CommandRebuild   = "readmodel-rebuild"
	CommandDLQReplay = "dlq-replay"
)

// Metrics are one run's progress series, labelled with its command.
type Metrics struct {
	planned prometheus.Gauge
	done    prometheus.Counter
	running prometheus.Gauge
}

// NewMetrics registers the progress series of command in reg:
// orderflow_repair_planned (what the run will go through: orders for a
// rebuild, dead letters for a replay), orderflow_repair_done_total (done
// so far) and orderflow_repair_running (1 until the run ends).
func NewMetrics(reg prometheus.Registerer, command string) *Metrics {
	labels := prometheus.Labels{"command": command}
	m := &Metrics{
		planned: prometheus.NewGauge(prometheus.GaugeOpts{Name: "orderflow_repair_planned", ConstLabels: labels,
			Help: "Items the running orderctl repair will go through (orders for a rebuild, dead letters for a replay)."}),
		done: prometheus.NewCounter(prometheus.CounterOpts{Name: "orderflow_repair_done_total", ConstLabels: labels,
			Help: "Items the running orderctl repair has gone through."}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{Name: "orderflow_repair_running", ConstLabels: labels,
			Help: "1 while the orderctl repair runs, 0 once it ended."}),
	}
	reg.MustRegister(m.planned, m.done, m.running)
	m.running.Set(1)
	return m
}

// Plan sets how many items the run will go through.
func (m *Metrics) Plan(total int64) { m.planned.Set(float64(total)) }

// Done counts n items gone through.
func (m *Metrics) Done(n int) {
	if n > 0 {
		m.done.Add(float64(n))
	}
}

// Finish marks the run ended.
func (m *Metrics) Finish() { m.running.Set(0) }

// Server serves a registry's /metrics during a run.
type Server struct {
	srv    *http.Server
	ln     net.Listener
	linger time.Duration
	logger *slog.Logger
	done   chan struct{}
}

// Listen binds addr and serves reg's /metrics (with the Go and process
// collectors) until Close; Close waits linger first.
func Listen(addr string, reg *prometheus.Registry, linger time.Duration, logger *slog.Logger) (*Server, error) {
	if addr == "" || reg == nil || logger == nil {
		return nil, errors.New("progress: the address, registry and logger are required")
	}
	if linger < 0 {
		return nil, errors.New("progress: the linger must not be negative")
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for metrics on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	s := &Server{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, ln: ln, linger: linger, logger: logger, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("serving metrics failed", slog.Any("error", err))
		}
	}()
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close keeps serving for the linger (cut short when ctx ends), so the
// run's last values reach a scrape, then stops.
func (s *Server) Close(ctx context.Context) error {
	if s.linger > 0 {
		s.logger.InfoContext(ctx, "serving the final progress metrics", slog.String("addr", s.Addr()), slog.Duration("linger", s.linger))
		t := time.NewTimer(s.linger)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	<-s.done
	return err
}
