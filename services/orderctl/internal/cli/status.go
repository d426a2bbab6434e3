package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	sysstatus "github.com/orderflow/orderflow/services/orderctl/internal/status"
	"github.com/orderflow/orderflow/shared/shard"
)

// AttentionError is returned by `status` when something needs attention;
// main exits with Code (2) for it, so scripts tell it apart from a failed
// run (1).
type AttentionError struct {
	Problems int
}

// Code is the process exit code of an AttentionError.
func (e *AttentionError) Code() int { return 2 }

func (e *AttentionError) Error() string {
	return fmt.Sprintf("%d problem(s) need attention", e.Problems)
}

func newStatusCmd(s Settings) *cobra.Command {
	var (
		rf             readSideFlags
		groups, topics []string
		promURL        string
		maxAge         time.Duration
		maxLag         int64
		timeout, ping  time.Duration
		asJSON         bool
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "One screen for the engineer on call: shards, outbox, consumer lag, dead letters, freshness and firing alerts",
		Long: `status checks, all at once and each within --timeout:

  shards        reachable (a ping within --ping-timeout), outbox PENDING rows and the oldest one's age,
                FAILED rows, the relay owning the shard (read from the shards, as outbox stats does)
  consumer lag  per --group and --topic: the sum over the partitions and the worst partition,
                from the committed offsets and the high-water marks
  dead letters  how many are not worked off (as dlq count does)
  Prometheus    freshness p99 over 5 minutes and the firing alerts, when --prometheus answers
                ("Prometheus unreachable" otherwise, which alone needs no attention)

It exits 0 when nothing needs attention, 2 when something does (a shard unreachable or without
owner, FAILED rows, oldest pending above --max-pending-age, lag above --max-lag, dead letters not
worked off, a firing alert, a part that could not be read), 1 when it could not run. --json prints
the report for scripts (schema: docs/runbooks/outbox.md). Colour only on a terminal without NO_COLOR.`,
		Example: `  orderctl status
  orderctl status --json | jq '.problems'
  orderctl status --max-lag 5000 --prometheus http://prometheus:9090`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			topo, err := shard.LoadTopology(rf.topology)
			if err != nil {
				return err
			}
			// A short dial timeout: a shard that does not accept within it
			// is reported down, it does not hold the screen.
			pools, err := shard.Open(topo, shard.PoolConfig{MaxOpenConns: 4, MaxIdleConns: 4, ConnMaxLifetime: time.Minute,
				DialTimeout: ping, IOTimeout: timeout})
			if err != nil {
				return err
			}
			defer func() { _ = pools.Close() }()
			checker, err := sysstatus.New(sysstatus.Config{Pools: pools, Brokers: rf.brokerList(), Groups: groups, Topics: topics,
				DLQTopic: rf.dlqTopic, MongoURI: rf.mongoURI, MongoDatabase: rf.database, PrometheusURL: promURL,
				MaxPendingAge: maxAge, MaxLag: maxLag, Timeout: timeout, PingTimeout: ping})
			if err != nil {
				return err
			}
			report := checker.Check(cmd.Context())
			out := cmd.OutOrStdout()
			if asJSON {
				if err := sysstatus.WriteJSON(out, report); err != nil {
					return err
				}
			} else {
				sysstatus.WriteText(out, report, sysstatus.NewPalette(colorOn(out)))
			}
			if !report.Healthy {
				return &AttentionError{Problems: len(report.Problems)}
			}
			return nil
		},
	}
	rf.bind(cmd, s, true)
	fl := cmd.Flags()
	fl.StringSliceVar(&groups, "group", []string{s.ProjectorGroup}, "consumer groups whose lag is checked ($ORDERFLOW_PROJECTOR_GROUP)")
	fl.StringSliceVar(&topics, "topic", []string{s.ProjectorTopic}, "topics the groups consume ($ORDERFLOW_PROJECTOR_TOPIC)")
	fl.StringVar(&promURL, "prometheus", s.PrometheusURL, `Prometheus base URL ($ORDERFLOW_PROMETHEUS_URL; "" skips it)`)
	fl.DurationVar(&maxAge, "max-pending-age", sysstatus.DefaultMaxPendingAge, "oldest PENDING outbox row older than this needs attention")
	fl.Int64Var(&maxLag, "max-lag", sysstatus.DefaultMaxLag, "consumer lag (messages per topic) above this needs attention")
	fl.DurationVar(&timeout, "timeout", sysstatus.DefaultTimeout, "deadline of each check")
	fl.DurationVar(&ping, "ping-timeout", sysstatus.DefaultPingTimeout, "deadline of a shard's ping")
	fl.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// colorOn reports whether the text report is coloured: only on a terminal,
// and never when NO_COLOR is set to anything (https://no-color.org).
func colorOn(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd())) && !strings.EqualFold(os.Getenv("TERM"), "dumb")
}
