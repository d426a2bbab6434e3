package shard

import (
	"context"
	"log/slog"
	"os"
	"time"
)

// WatchTopology reloads the topology file into pools whenever it changes,
// checking every interval until ctx ends. A file that does not parse, or that
// does not only extend the current topology, is logged and ignored: the
// service keeps routing with what it has.
func WatchTopology(ctx context.Context, path string, pools *Pools, interval time.Duration, logger *slog.Logger) {
	var seen time.Time
	if st, err := os.Stat(path); err == nil {
		seen = st.ModTime()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := os.Stat(path)
		if err != nil || !st.ModTime().After(seen) {
			continue
		}
		seen = st.ModTime()
		if _, err := ReloadTopology(ctx, path, pools, logger); err != nil {
			logger.ErrorContext(ctx, "topology file changed but is refused", slog.Any("error", err))
		}
	}
}

// ReloadTopology reads the topology file into pools now and reports whether
// the topology grew.
func ReloadTopology(ctx context.Context, path string, pools *Pools, logger *slog.Logger) (bool, error) {
	topo, err := LoadTopology(path)
	if err != nil {
		return false, err
	}
	changed, err := pools.Extend(topo)
	if changed {
		logger.InfoContext(ctx, "topology reloaded", slog.Int("shards", len(topo.Shards)), slog.Int("epochs", len(topo.Epochs)),
			slog.Int64("current_epoch_first_order_no", topo.Epochs[topo.Current()].FirstOrderNo))
	}
	return changed, err
}
