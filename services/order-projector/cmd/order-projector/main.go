// Command order-projector builds the MongoDB order documents and the external
// events from the internal events on Kafka.
package main

import (
	"context"
	"log/slog"

	"github.com/orderflow/orderflow/services/order-projector/internal/service"
	"github.com/orderflow/orderflow/shared/bootstrap"
	"github.com/orderflow/orderflow/shared/shard"
)

func main() {
	bootstrap.Main[service.Config]("order-projector", func(ctx context.Context, cfg service.Config, topo shard.Topology, logger *slog.Logger) error {
		svc, err := service.New(ctx, cfg, topo, logger)
		if err != nil {
			return err
		}
		return svc.Run(ctx)
	})
}
