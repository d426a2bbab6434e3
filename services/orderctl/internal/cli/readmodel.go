package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/orderflow/orderflow/services/orderctl/internal/progress"
	"github.com/orderflow/orderflow/services/orderctl/internal/readmodel"
)

func newReadModelCmd(s Settings) *cobra.Command {
	cmd := &cobra.Command{Use: "readmodel", Short: "Rebuild the read side's documents from the shards"}
	cmd.AddCommand(newRebuildCmd(s))
	return cmd
}

// rebuildFlags are the rebuild's tuning, shared with verify --repair.
type rebuildFlags struct {
	batch int
	rate  float64
}

func (f *rebuildFlags) bind(cmd *cobra.Command) {
	cmd.Flags().IntVar(&f.batch, "batch", 500, "orders read and projected at a time")
	cmd.Flags().Float64Var(&f.rate, "rate", 2000, "at most this many documents per second, so live traffic keeps its latency (0: no limit)")
}

func (f *rebuildFlags) rebuilder(rs *readSide) (*readmodel.Rebuilder, error) {
	return readmodel.NewRebuilder(rs.pools, rs.applier, readmodel.NewCheckpoints(rs.db, time.Now), readmodel.Config{Batch: f.batch, Rate: f.rate})
}

func printRebuild(w io.Writer, rep readmodel.Report, took time.Duration) {
	for shard, after := range rep.Resumed {
		fmt.Fprintf(w, "%s: resumed after order %d\n", shard, after)
	}
	if len(rep.Missing) > 0 {
		fmt.Fprintf(w, "not on their shard (purged or never placed): %d, first %v\n", len(rep.Missing), rep.Missing[:min(len(rep.Missing), 10)])
	}
	fmt.Fprintf(w, "rebuild: orders=%d written=%d current=%d external=%d missing=%d took=%s\n",
		rep.Orders, rep.Projected, rep.Current, rep.External, len(rep.Missing), took.Round(time.Millisecond))
}

func newRebuildCmd(s Settings) *cobra.Command {
	var (
		rf     readSideFlags
		bf     rebuildFlags
		mf     metricsFlags
		since  string
		shards []string
		orders []int64
		resume bool
	)
	cmd := &cobra.Command{
		Use:   "rebuild",
		Short: "Re-project orders from the shards into their documents (after the read store lost them), resumable",
		Long: `rebuild reads the orders of every shard (or --shard), page by page in order-number order,
optionally only those placed since a time, and writes their documents through the projector's code:
version-guarded, so documents already current are left alone and the live projector can run
meanwhile. It is rate-limited (--rate documents/s) and checkpoints each shard's last order number in
MongoDB (readmodel_rebuild) after every batch: --resume continues an interrupted run with the same
options; without it a run starts over. --orders re-projects exactly those orders (no checkpoint).

External events: for a document that is gone, every version of the order is above its
externalVersion, so its external events are published again under the same event ids
(at-least-once; consumers drop ids they have seen).`,
		Example: `  orderctl readmodel rebuild --since 24h --rate 1000
  orderctl readmodel rebuild --resume --since 24h --rate 1000
  orderctl readmodel rebuild --orders 1042,1043`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sinceT, err := parseTime(since)
			if err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			if len(orders) > 0 && (resume || since != "" || len(shards) > 0) {
				return fmt.Errorf("--orders re-projects exactly those orders: it takes no --since, --shard or --resume")
			}
			rs, err := rf.open(cmd.Context(), cmdLogger(cmd))
			if err != nil {
				return err
			}
			defer rs.close()
			rb, err := bf.rebuilder(rs)
			if err != nil {
				return err
			}
			metrics, stopMetrics, err := mf.start(cmd, progress.CommandRebuild)
			if err != nil {
				return err
			}
			defer stopMetrics()
			var bar interface{ Add(int) error }
			hooks := readmodel.Hooks{
				Counted: func(total int64) {
					bar = newBar(cmd.ErrOrStderr(), total, "rebuilding")
					metrics.Plan(total)
				},
				Batch: func(_ string, nos []int64) {
					_ = bar.Add(len(nos))
					metrics.Done(len(nos))
				},
			}
			start := time.Now()
			var rep readmodel.Report
			if len(orders) > 0 {
				rep, err = rb.Orders(cmd.Context(), orders, hooks)
			} else {
				rep, err = rb.Run(cmd.Context(), readmodel.Options{Since: sinceT, Shards: shards, Resume: resume}, hooks)
			}
			printRebuild(cmd.OutOrStdout(), rep, time.Since(start))
			if err != nil && len(orders) == 0 {
				return fmt.Errorf("%w (the checkpoint keeps what was done: rerun with --resume and the same options)", err)
			}
			return err
		},
	}
	rf.bind(cmd, s, true)
	bf.bind(cmd)
	mf.bind(cmd)
	cmd.Flags().StringVar(&since, "since", "", "only orders placed at or after (RFC 3339, or a duration ago such as 24h)")
	cmd.Flags().StringSliceVar(&shards, "shard", nil, "only this shard (repeatable)")
	cmd.Flags().Int64SliceVar(&orders, "orders", nil, "re-project exactly these orders (comma-separated)")
	cmd.Flags().BoolVar(&resume, "resume", false, "continue the interrupted run with the same --since and --shard from its checkpoint")
	return cmd
}
