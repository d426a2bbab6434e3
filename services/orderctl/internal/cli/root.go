// Package cli defines orderctl's commands.
package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// New returns the root command writing results to out and progress to
// errOut, with its flags' defaults read from the ORDERFLOW_* variables
// (Settings). A variable that does not parse fails every command.
func New(out, errOut io.Writer) *cobra.Command {
	s, err := LoadSettings(nil)
	root := NewWithSettings(out, errOut, s)
	if err != nil {
		root.PersistentPreRunE = func(*cobra.Command, []string) error { return err }
	}
	return root
}

// NewWithSettings is New with the given settings instead of the process
// environment's.
func NewWithSettings(out, errOut io.Writer, s Settings) *cobra.Command {
	root := &cobra.Command{
		Use:           "orderctl",
		Short:         "Operate orderflow: inspect, repair and change the shards, the outbox, the read side and the topics",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.AddCommand(newMigrateCmd(), newInfraCmd(), newKafkaCmd(s), newOutboxCmd(s), newVerifyCmd(s), newOrdersCmd(s), newShardsCmd(s),
		newDLQCmd(s), newReadModelCmd(s), newStatusCmd(s), newKeysCmd(s), newTokenCmd(s))
	root.Long = rootHelp(root)
	return root
}

// rootHelp is the root command's long help: every command that runs
// something, by its full path and arguments, with its short help. It is
// derived from the command tree, so it lists every command there is
// (cobra's own help and completion aside, which its usage lists).
func rootHelp(root *cobra.Command) string {
	type line struct{ use, short string }
	var lines []line
	width := 0
	var walk func(c *cobra.Command, prefix string)
	walk = func(c *cobra.Command, prefix string) {
		for _, sub := range c.Commands() {
			if !sub.IsAvailableCommand() || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			if sub.HasAvailableSubCommands() {
				walk(sub, prefix+sub.Name()+" ")
				continue
			}
			use := prefix + sub.Use
			lines = append(lines, line{use, sub.Short})
			width = max(width, len(use))
		}
	}
	walk(root, "")
	var b strings.Builder
	b.WriteString("orderctl operates orderflow. Its commands:\n\n")
	for _, l := range lines {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, l.use, l.short)
	}
	b.WriteString("\nRunbooks: docs/runbooks/outbox.md, docs/runbooks/read-side.md.")
	return b.String()
}
