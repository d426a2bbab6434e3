// Package cli defines orderctl's commands.
package cli

import (
	"io"

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
		Use:   "orderctl",
		Short: "Operate orderflow: status, schema, infrastructure, topics, outbox, shards, purge, verify, dead letters, read-model rebuild",
		Long: `orderctl operates orderflow. Its commands:

  status                          what needs attention now: shards, outbox, lag, dead letters, alerts
  migrate                         apply the schema migrations to every shard
  infra wait                      wait until the shards, Kafka and MongoDB answer
  kafka create-topics             create missing topics
  outbox stats|list|show|replay   the shards' outboxes; replay FAILED rows (audited)
  shards list|add|retire-epoch    the shard topology and its epochs
  orders purge                    remove orders past the retention (read side complete only)
  verify [--repair]               shards against the read side; --repair re-projects missing/stale documents
  dlq list|count|show|replay      the projector's dead letters; replay re-projects them (audited)
  readmodel rebuild               re-project orders from the shards into the read side (rate-limited, resumable)
  keys generate                   a new local signing key; the public JWK Set keeps the previous keys
  token                           a signed token for a user, a shop or an operator (the token alone on the last line)

Runbooks: docs/runbooks/outbox.md, docs/runbooks/read-side.md.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.AddCommand(newMigrateCmd(), newInfraCmd(), newKafkaCmd(s), newOutboxCmd(s), newVerifyCmd(s), newOrdersCmd(s), newShardsCmd(s),
		newDLQCmd(s), newReadModelCmd(s), newStatusCmd(s), newKeysCmd(s), newTokenCmd(s))
	return root
}
