package cli

import (
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/orderflow/orderflow/services/orderctl/internal/verify"
)

func newVerifyCmd(s Settings) *cobra.Command {
	var (
		rf             readSideFlags
		bf             rebuildFlags
		since, until   string
		pageSize, show int
		repair         bool
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check that every order's events were published and its read-side document is current, and that no order is misplaced",
		Long: `verify reads the orders of every shard (optionally only those placed in a window), page by
page, and checks that each has no PENDING or FAILED outbox row, that its MongoDB document carries
the order's version, and that it lives on the shard its epoch routes it to and nowhere else. It
prints a summary and the first offenders, and exits non-zero on any mismatch.

With --repair it then re-projects exactly the orders whose document is missing or stale (the
rebuild's path: re-read from the shard, version-guarded write, external events above the
document's externalVersion), checks those orders again, and exits non-zero if any is still wrong
or any other kind of mismatch was found (those need other remedies: outbox replay, ...).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := verify.Window{}
			var err error
			if w.Since, err = parseTime(since); err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			if w.Until, err = parseTime(until); err != nil {
				return fmt.Errorf("--until: %w", err)
			}
			pools, db, closeAll, err := openWithReadSide(cmd.Context(), rf.topology, rf.mongoURI, rf.database)
			if err != nil {
				return err
			}
			defer closeAll()
			v := verify.New(pools, db, pageSize, show)
			start := time.Now()
			last := time.Time{}
			rep, err := v.Run(cmd.Context(), w, func(shard string, orders int) {
				if time.Since(last) >= time.Second {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d orders checked (%s)\n", shard, orders, time.Since(start).Round(time.Second))
					last = time.Now()
				}
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "orders checked: %d\n", rep.Orders)
			if rep.OK() {
				fmt.Fprintln(out, "no mismatches")
				return nil
			}
			printMismatches(out, rep)
			if !repair {
				return fmt.Errorf("%d kinds of mismatch found", len(rep.Counts))
			}
			return runRepair(cmd, &rf, &bf, v, rep)
		},
	}
	rf.bind(cmd, s, true)
	bf.bind(cmd)
	cmd.Flags().StringVar(&since, "since", "", "only orders placed at or after (RFC 3339, or a duration ago such as 24h)")
	cmd.Flags().StringVar(&until, "until", "", "only orders placed before (RFC 3339, or a duration ago)")
	cmd.Flags().IntVar(&pageSize, "page-size", 1000, "orders read at a time (bounds memory)")
	cmd.Flags().IntVar(&show, "show", 20, "how many offenders to list")
	cmd.Flags().BoolVar(&repair, "repair", false, "re-project the orders whose document is missing or stale, then check them again")
	return cmd
}

func printMismatches(out io.Writer, rep verify.Report) {
	kinds := make([]string, 0, len(rep.Counts))
	for k := range rep.Counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(out, "%-17s %d\n", k, rep.Counts[k])
	}
	fmt.Fprintf(out, "first offenders:\n")
	for _, m := range rep.First {
		fmt.Fprintf(out, "  %s\n", m)
	}
}
