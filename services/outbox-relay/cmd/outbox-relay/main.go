// Command outbox-relay publishes the outbox rows of every shard to Kafka and
// serves the operators' admin API.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/orderflow/orderflow/services/outbox-relay/internal/service"
	"github.com/orderflow/orderflow/shared/config"
	"github.com/orderflow/orderflow/shared/logging"
	"github.com/orderflow/orderflow/shared/shard"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "outbox-relay:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.Load[service.Config]()
	if err != nil {
		return err
	}
	level, err := logging.ParseLevel(cfg.LogLevel)
	if err != nil {
		return fmt.Errorf("ORDERFLOW_LOG_LEVEL: %w", err)
	}
	logger := logging.New(os.Stdout, level, "outbox-relay")
	topo, err := shard.LoadTopology(cfg.TopologyFile)
	if err != nil {
		return fmt.Errorf("ORDERFLOW_TOPOLOGY_FILE: %w", err)
	}
	svc, err := service.New(ctx, cfg, topo, logger)
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
