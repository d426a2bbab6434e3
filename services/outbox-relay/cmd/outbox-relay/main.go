// Command outbox-relay publishes the outbox rows of every shard to Kafka and
// serves the operators' admin API.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/orderflow/orderflow/services/outbox-relay/internal/service"
	"github.com/orderflow/orderflow/shared/bootstrap"
	"github.com/orderflow/orderflow/shared/config"
	"github.com/orderflow/orderflow/shared/shard"
)

func main() {
	configVars := flag.Bool("config-vars", false, "print the ORDERFLOW_* variables read, one a line (required ones marked), and exit")
	flag.Parse()
	if *configVars {
		if err := config.WriteVars[service.Config](os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "outbox-relay:", err)
			os.Exit(1)
		}
		return
	}
	bootstrap.Main[service.Config]("outbox-relay", func(ctx context.Context, cfg service.Config, topo shard.Topology, logger *slog.Logger) error {
		svc, err := service.New(ctx, cfg, topo, logger)
		if err != nil {
			return err
		}
		return svc.Run(ctx)
	})
}
