// Command order-query serves the read side of orders over gRPC and REST,
// from the MongoDB documents the projector writes.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/orderflow/orderflow/services/order-query/internal/service"
	"github.com/orderflow/orderflow/shared/config"
	"github.com/orderflow/orderflow/shared/logging"
)

func main() {
	configVars := flag.Bool("config-vars", false, "print the ORDERFLOW_* variables read, one a line (required ones marked), and exit")
	flag.Parse()
	if *configVars {
		if err := config.WriteVars[service.Config](os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "order-query:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "order-query:", err)
		os.Exit(1)
	}
}

// run reads the configuration once and serves until SIGINT or SIGTERM. The
// query side's shard topology is optional (ORDERFLOW_TOPOLOGY_FILE: only to
// ask whether an order exists), so it does without the shared bootstrap,
// which requires one.
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
	logger := logging.New(os.Stdout, level, "order-query")
	svc, err := service.New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
