// Command order-command serves the write side of orders over gRPC and REST.
package main

import (
	"context"
	"log/slog"

	"github.com/orderflow/orderflow/services/order-command/internal/app"
	"github.com/orderflow/orderflow/services/order-command/internal/service"
	"github.com/orderflow/orderflow/shared/bootstrap"
	"github.com/orderflow/orderflow/shared/shard"
)

func main() {
	bootstrap.Main[service.Config]("order-command", func(ctx context.Context, cfg service.Config, topo shard.Topology, logger *slog.Logger) error {
		svc, err := service.New(ctx, cfg, topo, logger, app.SystemClock{})
		if err != nil {
			return err
		}
		return svc.Run(ctx)
	})
}
