// Package bootstrap is the body of every orderflow service's main: read the
// configuration once, build the logger, load the shard topology, and run the
// service until SIGINT or SIGTERM.
package bootstrap

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/orderflow/orderflow/shared/config"
	"github.com/orderflow/orderflow/shared/logging"
	"github.com/orderflow/orderflow/shared/shard"
)

// Settings is what bootstrap needs from a service's configuration.
type Settings interface {
	// LogLevelName is debug, info, warn or error.
	LogLevelName() string
	// TopologyPath is the shard topology file.
	TopologyPath() string
}

// Main runs the service and exits the process with status 1 when it fails.
// C is the service's configuration struct, read from ORDERFLOW_* variables.
func Main[C any, P interface {
	*C
	Settings
}](name string, run func(ctx context.Context, cfg C, topo shard.Topology, logger *slog.Logger) error) {
	if err := start[C, P](name, run); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

func start[C any, P interface {
	*C
	Settings
}](name string, run func(ctx context.Context, cfg C, topo shard.Topology, logger *slog.Logger) error) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.Load[C]()
	if err != nil {
		return err
	}
	settings := P(&cfg)
	level, err := logging.ParseLevel(settings.LogLevelName())
	if err != nil {
		return fmt.Errorf("ORDERFLOW_LOG_LEVEL: %w", err)
	}
	logger := logging.New(os.Stdout, level, name)
	topo, err := shard.LoadTopology(settings.TopologyPath())
	if err != nil {
		return fmt.Errorf("ORDERFLOW_TOPOLOGY_FILE: %w", err)
	}
	return run(ctx, cfg, topo, logger)
}
