package shard

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// WatchTopology reloads the topology file into pools whenever its content
// changes, checking every interval until ctx ends. It compares the content,
// not the modification time: two rewrites within one tick of the file
// system's clock (an epoch added, then the oldest retired) share a
// modification time, and the second would never be loaded. A file that does
// not parse, or that does not only extend the current topology, is logged
// once and ignored: the service keeps routing with what it has.
func WatchTopology(ctx context.Context, path string, pools *Pools, interval time.Duration, logger *slog.Logger) {
	// Nothing seen yet: the first tick loads the file, in case it changed
	// between start-up reading it and the watch starting (an unchanged
	// topology is a no-op).
	var seen []byte
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		data, err := os.ReadFile(path)
		if err != nil || bytes.Equal(data, seen) {
			continue
		}
		seen = data
		if _, err := reload(ctx, path, data, pools, logger); err != nil {
			logger.ErrorContext(ctx, "topology file changed but is refused", slog.Any("error", err))
		}
	}
}

// ReloadTopology reads the topology file into pools now and reports whether
// the topology changed.
func ReloadTopology(ctx context.Context, path string, pools *Pools, logger *slog.Logger) (bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("reading topology: %w", err)
	}
	return reload(ctx, path, data, pools, logger)
}

func reload(ctx context.Context, path string, data []byte, pools *Pools, logger *slog.Logger) (bool, error) {
	topo, err := ParseTopology(data)
	if err != nil {
		return false, fmt.Errorf("topology %s: %w", path, err)
	}
	changed, err := pools.Extend(topo)
	if changed {
		logger.InfoContext(ctx, "topology reloaded", slog.String("file", path),
			slog.Int("shards", len(topo.Shards)), slog.Int("epochs", len(topo.Epochs)),
			slog.Int64("oldest_epoch_first_order_no", topo.Epochs[0].FirstOrderNo),
			slog.Int64("current_epoch_first_order_no", topo.Epochs[topo.Current()].FirstOrderNo))
	}
	return changed, err
}
