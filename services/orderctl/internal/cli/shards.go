package cli

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/orderflow/orderflow/shared/lifecycle"
	"github.com/orderflow/orderflow/shared/shard"
)

func newShardsCmd(s Settings) *cobra.Command {
	cmd := &cobra.Command{Use: "shards", Short: "The shard topology and its epochs: list them, add a shard, retire an emptied epoch"}
	var topology string
	bindTopology(cmd.PersistentFlags(), &topology, s)

	var name string
	var headroom int64
	add := &cobra.Command{
		Use:   "add DSN",
		Short: "Bring a new shard online: migrate it, append an epoch that includes it, publish the topology",
		Long: `add applies the migrations to the new shard (creating its database), picks the new epoch's first
order number above every number the current shards have handed out or reserved (plus --headroom),
writes that number as a limit into the current shards' sequences so no instance can pass it, and
rewrites the topology file. Running services reload the file by themselves (ORDERFLOW_TOPOLOGY_RELOAD);
orders of older epochs keep routing to their shards.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pools, err := openShards(topology)
			if err != nil {
				return err
			}
			defer pools.Close()
			if name == "" {
				name = fmt.Sprintf("shard-%d", len(pools.Topology().Shards))
			}
			spec := shard.Spec{Name: name, DSN: args[0]}
			v, err := migrateShard(cmd.Context(), spec, true)
			if err != nil {
				return fmt.Errorf("migrating %s: %w", name, err)
			}
			next, err := shard.AddShard(cmd.Context(), pools, spec, headroom)
			if err != nil {
				return err
			}
			if err := shard.WriteTopology(topology, next); err != nil {
				return err
			}
			e := next.Epochs[next.Current()]
			fmt.Fprintf(cmd.OutOrStdout(), "%s added (schema version %d): orders from %d go to %s\n", name, v, e.FirstOrderNo, strings.Join(e.Shards, ", "))
			return nil
		},
	}
	add.Flags().StringVar(&name, "name", "", "the new shard's name (default shard-N)")
	add.Flags().Int64Var(&headroom, "headroom", 1_000_000, "order numbers left between the old epoch's highest and the new epoch")

	list := &cobra.Command{
		Use:   "list",
		Short: "Epochs, shards, their live orders and the share of new orders each receives",
		RunE: func(cmd *cobra.Command, _ []string) error {
			pools, err := openShards(topology)
			if err != nil {
				return err
			}
			defer pools.Close()
			topo := pools.Topology()
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "EPOCH FROM\tSHARDS")
			for _, e := range topo.Epochs {
				fmt.Fprintf(w, "%d\t%s\n", e.FirstOrderNo, strings.Join(e.Shards, ", "))
			}
			fmt.Fprintln(w, "\nSHARD\tORDERS\tSHARE OF NEW ORDERS")
			current := topo.Epochs[topo.Current()].Shards
			for _, s := range topo.Shards {
				db, err := pools.DB(s.Name)
				if err != nil {
					return err
				}
				var n int64
				if err := db.QueryRowContext(cmd.Context(), "SELECT COUNT(*) FROM orders").Scan(&n); err != nil {
					return shard.Classify(s.Name, err)
				}
				share := 0.0
				for _, c := range current {
					if c == s.Name {
						share = 100 / float64(len(current))
					}
				}
				fmt.Fprintf(w, "%s\t%d\t%.1f %%\n", s.Name, n, share)
			}
			return w.Flush()
		},
	}
	var mongoURI, database string
	retire := &cobra.Command{
		Use:   "retire-epoch FIRST_ORDER_NO",
		Short: "Remove the oldest epoch from the topology once none of its orders is left on the shards",
		Long: `retire-epoch removes the oldest epoch (named by its first order number) from the topology file, after
checking that it is not the current epoch and that the shards hold no order of its number range any
more (orderctl orders purge removes them after the retention). Services reload the topology by
themselves; the read side keeps the documents of those orders.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var first int64
			if _, err := fmt.Sscan(args[0], &first); err != nil {
				return fmt.Errorf("FIRST_ORDER_NO %q is not a number", args[0])
			}
			pools, db, closeAll, err := openWithReadSide(cmd.Context(), topology, mongoURI, database)
			if err != nil {
				return err
			}
			defer closeAll()
			// Epochs are named by their first order number, never by position:
			// positions shift as epochs are retired.
			if _, err := pools.Topology().Retire(first); err != nil {
				return err
			}
			epochs, err := lifecycle.NewPurger(pools, db).Epochs(cmd.Context())
			if err != nil {
				return err
			}
			i := slices.IndexFunc(epochs, func(e lifecycle.EpochStatus) bool { return e.FirstOrderNo == first })
			if i < 0 {
				return fmt.Errorf("%w: %d", shard.ErrUnknownEpoch, first)
			}
			if !epochs[i].Retirable {
				return fmt.Errorf("the epoch from order %d still has %d orders on the shards; purge them first", first, epochs[i].Orders)
			}
			// Retire from the file as it is now, not as it was when this
			// command started: an epoch added meanwhile must stay.
			current, err := shard.LoadTopology(topology)
			if err != nil {
				return err
			}
			next, err := current.Retire(first)
			if err != nil {
				return err
			}
			if err := shard.WriteTopology(topology, next); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "epoch from order %d retired; the oldest epoch now starts at %d\n", first, next.Epochs[0].FirstOrderNo)
			return nil
		},
	}
	bindMongo(retire.Flags(), &mongoURI, &database, s)
	cmd.AddCommand(add, list, retire)
	return cmd
}
