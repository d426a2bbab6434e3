// Command orderctl is the operator's tool for orderflow: schema migrations,
// infrastructure checks, Kafka topics, outbox inspection and replay, shard
// operations, the purge, verify and its repair, the projector's dead letters
// and the read model's rebuild.
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
