package cli

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/orderflow/orderflow/shared/outbox"
)

// outboxFlags are shared by the outbox subcommands.
type outboxFlags struct {
	topology string
}

func (f *outboxFlags) store() (*outbox.Store, func(), error) {
	pools, err := openShards(f.topology)
	if err != nil {
		return nil, nil, err
	}
	return outbox.NewStore(pools, time.Now), func() { _ = pools.Close() }, nil
}

func newOutboxCmd(s Settings) *cobra.Command {
	f := &outboxFlags{}
	cmd := &cobra.Command{
		Use:   "outbox",
		Short: "Inspect the shards' outboxes and replay failed messages (works on the shards directly)",
	}
	bindTopology(cmd.PersistentFlags(), &f.topology, s)
	cmd.AddCommand(newOutboxStatsCmd(f), newOutboxListCmd(f), newOutboxShowCmd(f), newOutboxReplayCmd(f))
	return cmd
}

func newOutboxStatsCmd(f *outboxFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Per shard: pending, published and failed rows, the oldest pending row's age, the owning relay",
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, closeFn, err := f.store()
			if err != nil {
				return err
			}
			defer closeFn()
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SHARD\tPENDING\tPUBLISHED\tFAILED\tOLDEST PENDING\tOWNER")
			failed := false
			for _, s := range store.Stats(cmd.Context()) {
				if s.Err != nil {
					fmt.Fprintf(w, "%s\terror: %v\n", s.Shard, s.Err)
					failed = true
					continue
				}
				owner := s.Owner
				if owner == "" {
					owner = "(none)"
				}
				fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\t%s\n", s.Shard, s.Pending, s.Published, s.Failed, s.OldestPendingAge.Round(time.Second), owner)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if failed {
				return fmt.Errorf("some shards could not be read")
			}
			return nil
		},
	}
}

// filterFlags binds the flags that select rows.
type filterFlags struct {
	shard, status, eventType, since, until string
}

func (ff *filterFlags) bind(cmd *cobra.Command, statusHelp string) {
	cmd.Flags().StringVar(&ff.shard, "shard", "", "only this shard")
	cmd.Flags().StringVar(&ff.status, "status", "", statusHelp)
	cmd.Flags().StringVar(&ff.eventType, "event-type", "", "only this event type (OrderPlaced, ...)")
	cmd.Flags().StringVar(&ff.since, "since", "", "occurred at or after (RFC 3339, or a duration ago such as 2h)")
	cmd.Flags().StringVar(&ff.until, "until", "", "occurred before (RFC 3339, or a duration ago)")
}

func (ff *filterFlags) filter() (outbox.Filter, error) {
	f := outbox.Filter{Shard: ff.shard, Status: outbox.Status(strings.ToUpper(ff.status)), EventType: ff.eventType}
	var err error
	if f.Since, err = parseTime(ff.since); err != nil {
		return f, fmt.Errorf("--since: %w", err)
	}
	if f.Until, err = parseTime(ff.until); err != nil {
		return f, fmt.Errorf("--until: %w", err)
	}
	return f, nil
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	return time.Parse(time.RFC3339, s)
}

func newOutboxListCmd(f *outboxFlags) *cobra.Command {
	var ff filterFlags
	var pageSize int
	var pageToken string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List outbox rows, oldest first, one page at a time",
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter, err := ff.filter()
			if err != nil {
				return err
			}
			store, closeFn, err := f.store()
			if err != nil {
				return err
			}
			defer closeFn()
			msgs, next, err := store.List(cmd.Context(), filter, pageSize, pageToken)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SHARD\tID\tSTATUS\tEVENT\tORDER\tVERSION\tOCCURRED\tATTEMPTS\tLAST ERROR")
			for _, m := range msgs {
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%d\t%d\t%s\t%d\t%s\n", m.Shard, m.ID, m.Status, m.EventType, m.OrderNo,
					m.OrderVersion, m.OccurredAt.Format(time.RFC3339), m.Attempts, oneLine(m.LastError, 60))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if next != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "more: --page-token %s\n", next)
			}
			return nil
		},
	}
	ff.bind(cmd, "only this status (PENDING, PUBLISHED, FAILED)")
	cmd.Flags().IntVar(&pageSize, "page-size", outbox.DefaultPageSize, "rows per page")
	cmd.Flags().StringVar(&pageToken, "page-token", "", "the token the previous page printed")
	return cmd
}

func oneLine(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func newOutboxShowCmd(f *outboxFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show SHARD ID",
		Short: "Show one outbox row",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil {
				return fmt.Errorf("ID %q is not a number", args[1])
			}
			store, closeFn, err := f.store()
			if err != nil {
				return err
			}
			defer closeFn()
			m, err := store.Get(cmd.Context(), args[0], id)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "shard:          %s\nid:             %d\nevent id:       %s\nevent type:     %s\norder:          %d (version %d)\n",
				m.Shard, m.ID, m.EventID, m.EventType, m.OrderNo, m.OrderVersion)
			fmt.Fprintf(w, "occurred at:    %s\ntraceparent:    %s\nstatus:         %s\nattempts:       %d\nlast error:     %s\n",
				m.OccurredAt.Format(time.RFC3339Nano), m.Traceparent, m.Status, m.Attempts, m.LastError)
			if m.NextAttemptAt != nil {
				fmt.Fprintf(w, "next attempt:   %s\n", m.NextAttemptAt.Format(time.RFC3339Nano))
			}
			if m.PublishedAt != nil {
				fmt.Fprintf(w, "published at:   %s\n", m.PublishedAt.Format(time.RFC3339Nano))
			}
			return nil
		},
	}
}

func newOutboxReplayCmd(f *outboxFlags) *cobra.Command {
	var ff filterFlags
	var ids []int64
	var dryRun bool
	var reason, actor string
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Put rows back to PENDING so the relay publishes them again (FAILED rows matching the filter, or --id rows)",
		Example: `  orderctl outbox replay --dry-run --reason "topic recreated"
  orderctl outbox replay --shard shard-1 --id 42 --id 43 --reason "consumer lost them"`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter, err := ff.filter()
			if err != nil {
				return err
			}
			store, closeFn, err := f.store()
			if err != nil {
				return err
			}
			defer closeFn()
			req := outbox.ReplayRequest{Shard: ff.shard, IDs: ids, Filter: filter, DryRun: dryRun, Reason: reason, Actor: actor}
			progress := func(shard string, done, total int64) {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d/%d replayed\n", shard, done, total)
			}
			res, err := store.Replay(cmd.Context(), req, progress)
			if err != nil {
				return err
			}
			verb := "replayed"
			if res.DryRun {
				verb = "would replay"
			}
			for _, name := range store.Topology().Names() {
				if n, ok := res.PerShard[name]; ok {
					fmt.Fprintf(cmd.OutOrStdout(), "%s: %s %d\n", name, verb, n)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "total: %s %d\n", verb, res.Total)
			return nil
		},
	}
	ff.bind(cmd, "status of the rows to replay (default FAILED)")
	cmd.Flags().Int64SliceVar(&ids, "id", nil, "replay this row of --shard (repeatable)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only count what would be replayed")
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit table; required)")
	cmd.Flags().StringVar(&actor, "actor", defaultActor(), "who (recorded in the audit table)")
	return cmd
}

func defaultActor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return "orderctl:" + name + "@" + host
}
