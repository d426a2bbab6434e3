package lifecycle

import "context"

// WithAfterCheck returns cfg with f run between each batch's check and its
// delete, so a test can change an order at exactly that moment.
func WithAfterCheck(cfg PurgeConfig, f func(ctx context.Context, shard string, nos []int64)) PurgeConfig {
	cfg.afterCheck = f
	return cfg
}
