// Command order-projector builds the MongoDB order documents and the external
// events from the internal events on Kafka.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/orderflow/orderflow/services/order-projector/internal/service"
	"github.com/orderflow/orderflow/shared/bootstrap"
	"github.com/orderflow/orderflow/shared/config"
	"github.com/orderflow/orderflow/shared/shard"
)

func main() {
	configVars := flag.Bool("config-vars", false, "print the ORDERFLOW_* variables read, one a line (required ones marked), and exit")
	flag.Parse()
	if *configVars {
		if err := config.WriteVars[service.Config](os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "order-projector:", err)
			os.Exit(1)
		}
		return
	}
	bootstrap.Main[service.Config]("order-projector", func(ctx context.Context, cfg service.Config, topo shard.Topology, logger *slog.Logger) error {
		svc, err := service.New(ctx, cfg, topo, logger)
		if err != nil {
			return err
		}
		return svc.Run(ctx)
	})
}
