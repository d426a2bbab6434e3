package cli

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/orderflow/orderflow/services/orderctl/internal/progress"
)

// metricsFlags serve a long run's progress to Prometheus.
type metricsFlags struct {
	listen string
	linger time.Duration
}

func (f *metricsFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.listen, "metrics-listen", "",
		"serve the run's progress on http://ADDR/metrics while it runs (127.0.0.1:9099 is the local Prometheus' orderctl job)")
	cmd.Flags().DurationVar(&f.linger, "metrics-linger", 10*time.Second,
		"with --metrics-listen, keep serving this long after the run so its final values reach a scrape (Ctrl-C cuts it short)")
}

// start registers command's progress series and, with --metrics-listen,
// serves them; stop ends the run's series and the server (after the
// linger). Without the flag the series are kept in a registry nobody
// reads.
func (f *metricsFlags) start(cmd *cobra.Command, command string) (m *progress.Metrics, stop func(), err error) {
	reg := prometheus.NewRegistry()
	m = progress.NewMetrics(reg, command)
	if f.listen == "" {
		return m, m.Finish, nil
	}
	srv, err := progress.Listen(f.listen, reg, f.linger, cmdLogger(cmd))
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "progress metrics on http://%s/metrics\n", srv.Addr())
	return m, func() {
		m.Finish()
		_ = srv.Close(cmd.Context())
	}, nil
}
