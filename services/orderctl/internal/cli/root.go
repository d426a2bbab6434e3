// Package cli defines orderctl's commands.
package cli

import (
	"io"

	"github.com/spf13/cobra"
)

// New returns the root command writing results to out and progress to errOut.
func New(out, errOut io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "orderctl",
		Short:         "Operate orderflow: schema, infrastructure, topics, outbox, shards, purge, verify, dead letters, read-model rebuild",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.AddCommand(newMigrateCmd(), newInfraCmd(), newKafkaCmd(), newOutboxCmd(), newVerifyCmd(), newOrdersCmd(), newShardsCmd(),
		newDLQCmd(), newReadModelCmd())
	return root
}
