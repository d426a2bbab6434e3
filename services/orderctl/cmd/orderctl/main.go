// Command orderctl is the operator's tool for orderflow. It works on the
// shards, Kafka and the read side's MongoDB directly, with the services'
// ORDERFLOW_* settings as its flags' defaults, so it also works while the
// services it repairs are down.
//
// Its commands (`orderctl --help` prints the same list, derived from the
// command tree, with each command's summary; this package's test checks
// that the list below names exactly the commands of the tree):
//
//	status                          what needs attention now: shards, outbox, lag, dead letters, freshness, alerts
//	migrate                         apply the schema migrations to every shard
//	infra wait                      wait until the shards, Kafka and MongoDB answer
//	kafka create-topics             create the topics that are missing
//	outbox stats|list|show|replay   the shards' outboxes; replay puts rows back to PENDING (audited)
//	shards list|add|retire-epoch    the shard topology and its epochs
//	orders purge                    remove orders past the retention (only those the read side holds in full)
//	verify                          shards against the read side; --repair re-projects missing or stale documents
//	dlq list|count|show|replay      the projector's dead letters; replay re-projects them (audited)
//	readmodel rebuild               re-project orders from the shards into the read side (rate-limited, resumable)
//	keys generate                   a new local signing key; the public JWK Set keeps the previous keys
//	token                           a signed token for a user, a shop or an operator (the token alone on standard output)
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/orderflow/orderflow/services/orderctl/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cli.New(os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "orderctl:", err)
		// A command that ran and found something wrong (status) says so
		// with its own code, apart from a command that failed.
		var coded interface{ Code() int }
		if errors.As(err, &coded) {
			os.Exit(coded.Code())
		}
		os.Exit(1)
	}
}
