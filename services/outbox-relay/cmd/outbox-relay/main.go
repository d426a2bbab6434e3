// Command outbox-relay publishes the outbox rows of every shard to Kafka and
// serves the operators' admin API.
package main

import (
	"context"
	"log/slog"

	"github.com/orderflow/orderflow/services/outbox-relay/internal/service"
	"github.com/orderflow/orderflow/shared/bootstrap"
	"github.com/orderflow/orderflow/shared/shard"
)

func main() {
	bootstrap.Main[service.Config]("outbox-relay", func(ctx context.Context, cfg service.Config, topo shard.Topology, logger *slog.Logger) error {
		svc, err := service.New(ctx, cfg, topo, logger)
		if err != nil {
			return err
		}
		return svc.Run(ctx)
	})
}
