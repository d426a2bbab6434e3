package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/orderflow/orderflow/services/orderctl/internal/readmodel"
	"github.com/orderflow/orderflow/services/orderctl/internal/verify"
)

// runRepair re-projects the orders verify found missing or stale through
// the rebuild's path and checks them again.
func runRepair(cmd *cobra.Command, rf *readSideFlags, bf *rebuildFlags, v *verify.Verifier, rep verify.Report) error {
	out := cmd.OutOrStdout()
	rs, err := rf.open(cmd.Context(), cmdLogger(cmd))
	if err != nil {
		return err
	}
	defer rs.close()
	rb, err := bf.rebuilder(rs)
	if err != nil {
		return err
	}
	res, err := v.Repair(cmd.Context(), rep, func(ctx context.Context, nos []int64) error {
		_, err := rb.Orders(ctx, nos, readmodel.Hooks{})
		return err
	})
	if err != nil {
		return err
	}
	for _, m := range res.StillWrong {
		fmt.Fprintf(out, "  still wrong: %s\n", m)
	}
	other := 0
	for kind, n := range rep.Counts {
		if kind != verify.KindMissingDocument && kind != verify.KindStaleDocument {
			other += n
		}
	}
	fmt.Fprintf(out, "repair: re-projected=%d repaired=%d still-wrong=%d other-mismatches=%d\n",
		len(res.Repaired)+len(res.StillWrong), len(res.Repaired), len(res.StillWrong), other)
	switch {
	case len(res.StillWrong) > 0:
		return fmt.Errorf("%d orders still missing or stale after the repair", len(res.StillWrong))
	case other > 0:
		return fmt.Errorf("%d mismatches that a re-projection does not repair", other)
	}
	return nil
}
