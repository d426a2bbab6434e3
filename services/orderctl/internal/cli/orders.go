package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/orderflow/orderflow/shared/lifecycle"
	"github.com/orderflow/orderflow/shared/lifecycle/retention"
)

func newOrdersCmd(s Settings) *cobra.Command {
	cmd := &cobra.Command{Use: "orders", Short: "The write side's order lifecycle"}
	var (
		topology, mongoURI, database, at string
		retain                           time.Duration
		batch                            int
		dryRun                           bool
	)
	purge := &cobra.Command{
		Use:   "purge",
		Short: "Remove orders older than the retention from the shards (only those the read side holds in full)",
		Long: `purge removes, shard by shard and in small batches, the orders placed before now minus the
retention, with their items, history and outbox rows, but only when the MongoDB document has the
order's latest version and every event was published; the others are held for a later run, as is
an order that changes while it is being purged. The retention is at least 720h (30 days), the
longest order-command lets an order be advanced or cancelled. The documents stay as history. Afterwards it says which old shard epochs have no order left and can be
retired.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := lifecycle.PurgeConfig{Retention: retain, Now: time.Now(), Batch: batch, DryRun: dryRun}
			if at != "" {
				t, err := time.Parse(time.RFC3339, at)
				if err != nil {
					return fmt.Errorf("--now: %w", err)
				}
				cfg.Now = t
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("--retention or --batch: %w", err)
			}
			pools, db, closeAll, err := openWithReadSide(cmd.Context(), topology, mongoURI, database)
			if err != nil {
				return err
			}
			defer closeAll()
			p := lifecycle.NewPurger(pools, db)
			results, err := p.Purge(cmd.Context(), cfg,
				func(r lifecycle.ShardResult) {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d purged, %d held\n", r.Shard, r.Purged, r.Held)
				})
			verb := "purged"
			if dryRun {
				verb = "would purge"
			}
			for _, r := range results {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s %d, held %d (read side behind, events unpublished, or changed meanwhile)\n", r.Shard, verb, r.Purged, r.Held)
			}
			if err != nil {
				return err
			}
			epochs, err := p.Epochs(cmd.Context())
			if err != nil {
				return err
			}
			for _, e := range epochs {
				switch {
				case e.Retirable:
					fmt.Fprintf(cmd.OutOrStdout(), "epoch from order %d: no order left; it can be retired from the topology\n", e.FirstOrderNo)
				default:
					fmt.Fprintf(cmd.OutOrStdout(), "epoch from order %d: %d orders on the shards\n", e.FirstOrderNo, e.Orders)
				}
			}
			return nil
		},
	}
	bindTopology(purge.Flags(), &topology, s)
	bindMongo(purge.Flags(), &mongoURI, &database, s)
	purge.Flags().DurationVar(&retain, "retention", retention.Min, "keep orders placed within this long (at least 720h)")
	purge.Flags().IntVar(&batch, "batch", 500, "orders per delete transaction")
	purge.Flags().BoolVar(&dryRun, "dry-run", false, "only count")
	purge.Flags().StringVar(&at, "now", "", "the time to count the retention from (RFC 3339; default now)")
	cmd.AddCommand(purge)
	return cmd
}
