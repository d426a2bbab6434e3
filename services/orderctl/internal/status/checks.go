package status

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/IBM/sarama"
	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/orderflow/orderflow/services/orderctl/internal/dlq"
	"github.com/orderflow/orderflow/shared/deadletter"
	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/mongox"
	"github.com/orderflow/orderflow/shared/outbox"
	"github.com/orderflow/orderflow/shared/shard"
)

// FreshnessQuery is the read side's freshness p99 over the last 5 minutes,
// as the dashboard and the read_freshness SLO measure it.
const FreshnessQuery = `histogram_quantile(0.99, sum by (le) (rate(orderflow_projector_lag_seconds_bucket[5m])))`

// shards pings every shard and reads its outbox backlog (the cheap form of
// `orderctl outbox stats`: no count of the published rows), every shard
// and both at once, each under its own deadline.
func (c *Checker) shards(ctx context.Context) []Shard {
	names := c.cfg.Pools.Topology().Names()
	out := make([]Shard, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { out[i] = c.shard(ctx, name) })
	}
	wg.Wait()
	return out
}

func (c *Checker) shard(ctx context.Context, name string) Shard {
	s := Shard{Shard: name}
	var (
		wg               sync.WaitGroup
		pingErr, statErr error
		st               outbox.ShardStats
	)
	wg.Go(func() {
		_, pingErr = bounded(ctx, c.cfg.PingTimeout, func(ctx context.Context) (struct{}, error) {
			db, err := c.cfg.Pools.DB(name)
			if err != nil {
				return struct{}{}, err
			}
			return struct{}{}, shard.Classify(name, db.PingContext(ctx))
		})
	})
	wg.Go(func() {
		st, statErr = bounded(ctx, c.cfg.Timeout, func(ctx context.Context) (outbox.ShardStats, error) {
			st := c.store.ShardBacklog(ctx, name)
			return st, st.Err
		})
	})
	wg.Wait()
	switch {
	case pingErr != nil:
		s.Error = pingErr.Error()
	case statErr != nil:
		s.Reachable, s.Error = true, "outbox: "+statErr.Error()
	default:
		s.Reachable = true
		s.Pending, s.Failed, s.Owner = st.Pending, st.Failed, st.Owner
		s.OldestPendingAgeSeconds = st.OldestPendingAge.Seconds()
	}
	return s
}

// kafkaConfig is the client configuration of the checks: timeouts within
// the check's and no metadata retries, so a broker that is down fails fast.
func (c *Checker) kafkaConfig() *sarama.Config {
	cfg := kafkax.NewConfig("orderctl-status")
	cfg.Net.DialTimeout = c.cfg.Timeout
	cfg.Net.ReadTimeout = c.cfg.Timeout
	cfg.Net.WriteTimeout = c.cfg.Timeout
	cfg.Metadata.Retry.Max = 0
	return cfg
}

// consumerGroups reads each group's committed offsets and each partition's
// high-water mark.
func (c *Checker) consumerGroups(ctx context.Context) []GroupLag {
	out := make([]GroupLag, len(c.cfg.Groups))
	for i, g := range c.cfg.Groups {
		out[i] = GroupLag{Group: g, Topics: []TopicLag{}}
	}
	if len(out) == 0 {
		return out
	}
	lags, err := bounded(ctx, c.cfg.Timeout, func(ctx context.Context) ([]GroupLag, error) {
		client, err := sarama.NewClient(c.cfg.Brokers, c.kafkaConfig())
		if err != nil {
			return nil, fmt.Errorf("connecting to kafka: %w", err)
		}
		defer client.Close()
		admin, err := sarama.NewClusterAdminFromClient(client)
		if err != nil {
			return nil, fmt.Errorf("connecting to kafka: %w", err)
		}
		// Closing the admin would close the client a second time.
		return c.readLags(ctx, client, admin)
	})
	if err != nil {
		for i := range out {
			out[i].Error = err.Error()
		}
		return out
	}
	return lags
}

type partitionBounds struct{ oldest, newest int64 }

func (c *Checker) readLags(ctx context.Context, client sarama.Client, admin sarama.ClusterAdmin) ([]GroupLag, error) {
	partitions := map[string][]int32{}
	bounds := map[string]map[int32]partitionBounds{}
	for _, topic := range c.cfg.Topics {
		parts, err := client.Partitions(topic)
		if err != nil {
			return nil, fmt.Errorf("listing the partitions of %s: %w", topic, err)
		}
		slices.Sort(parts)
		partitions[topic] = parts
		bounds[topic] = map[int32]partitionBounds{}
		for _, p := range parts {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			var b partitionBounds
			if b.oldest, err = client.GetOffset(topic, p, sarama.OffsetOldest); err != nil {
				return nil, fmt.Errorf("reading the oldest offset of %s/%d: %w", topic, p, err)
			}
			if b.newest, err = client.GetOffset(topic, p, sarama.OffsetNewest); err != nil {
				return nil, fmt.Errorf("reading the high-water mark of %s/%d: %w", topic, p, err)
			}
			bounds[topic][p] = b
		}
	}
	out := make([]GroupLag, 0, len(c.cfg.Groups))
	for _, group := range c.cfg.Groups {
		g := GroupLag{Group: group, Topics: []TopicLag{}}
		resp, err := admin.ListConsumerGroupOffsets(group, partitions)
		if err == nil && !errors.Is(resp.Err, sarama.ErrNoError) {
			err = resp.Err
		}
		if err != nil {
			g.Error = fmt.Sprintf("reading the committed offsets: %v", err)
			out = append(out, g)
			continue
		}
		for _, topic := range c.cfg.Topics {
			t := TopicLag{Topic: topic, Partitions: len(partitions[topic]), WorstPartition: -1}
			for _, p := range partitions[topic] {
				b := bounds[topic][p]
				from := b.oldest
				if block := resp.GetBlock(topic, p); block != nil && block.Err == sarama.ErrNoError && block.Offset >= 0 {
					from = max(block.Offset, b.oldest)
				}
				lag := max(b.newest-from, 0)
				t.Lag += lag
				if t.WorstPartition < 0 || lag > t.WorstPartitionLag {
					t.WorstPartition, t.WorstPartitionLag = p, lag
				}
			}
			g.Topics = append(g.Topics, t)
		}
		out = append(out, g)
	}
	return out, nil
}

// deadLetters counts the dead letters not worked off, as `orderctl dlq
// count` and the projector's orderflow_dlq_unresolved_messages gauge do
// (shared/deadletter): from offsets and marks, no message read.
func (c *Checker) deadLetters(ctx context.Context) DeadLetters {
	d := DeadLetters{Topic: c.cfg.DLQTopic}
	counts, err := bounded(ctx, c.cfg.Timeout, func(ctx context.Context) (deadletter.Counts, error) {
		reader, err := dlq.NewReaderWithConfig(c.cfg.Brokers, c.cfg.DLQTopic, c.kafkaConfig())
		if err != nil {
			return deadletter.Counts{}, err
		}
		defer reader.Close()
		client, err := mongox.Connect(ctx, c.cfg.MongoURI)
		if err != nil {
			return deadletter.Counts{}, err
		}
		defer func() { _ = client.Disconnect(context.WithoutCancel(ctx)) }()
		return dlq.NewService(reader, dlq.NewStore(client.Database(c.cfg.MongoDatabase))).Count(ctx)
	})
	if err != nil {
		d.Error = err.Error()
		return d
	}
	d.Unresolved, d.Total = int(counts.Unresolved), int(counts.Retained)
	return d
}

// prometheus reads the freshness p99 and the firing alerts; Prometheus not
// answering is reported, not a problem.
func (c *Checker) prometheus(ctx context.Context) Prometheus {
	p := Prometheus{URL: c.cfg.PrometheusURL, FiringAlerts: []Alert{}}
	if p.URL == "" {
		p.Error = "no Prometheus URL set"
		return p
	}
	type answer struct {
		freshness *float64
		alerts    []Alert
	}
	a, err := bounded(ctx, c.cfg.Timeout, func(ctx context.Context) (answer, error) {
		client, err := promapi.NewClient(promapi.Config{Address: p.URL, Client: &http.Client{Timeout: c.cfg.Timeout}})
		if err != nil {
			return answer{}, err
		}
		api := promv1.NewAPI(client)
		alerts, err := api.Alerts(ctx)
		if err != nil {
			return answer{}, fmt.Errorf("reading the alerts: %w", err)
		}
		var out answer
		for _, al := range alerts.Alerts {
			if al.State != promv1.AlertStateFiring {
				continue
			}
			labels := make(map[string]string, len(al.Labels))
			for k, v := range al.Labels {
				labels[string(k)] = string(v)
			}
			out.alerts = append(out.alerts, Alert{Name: labels[model.AlertNameLabel], Labels: labels, ActiveAt: al.ActiveAt,
				Summary: string(al.Annotations["summary"]), Runbook: string(al.Annotations["runbook"])})
		}
		slices.SortFunc(out.alerts, func(x, y Alert) int {
			return cmp.Or(strings.Compare(x.Name, y.Name), x.ActiveAt.Compare(y.ActiveAt))
		})
		v, _, _, err := api.Query(ctx, FreshnessQuery, c.cfg.Now())
		if err != nil {
			return answer{}, fmt.Errorf("querying the freshness: %w", err)
		}
		if vec, ok := v.(model.Vector); ok && len(vec) > 0 {
			if f := float64(vec[0].Value); !math.IsNaN(f) && !math.IsInf(f, 0) {
				out.freshness = &f
			}
		}
		return out, nil
	})
	if err != nil {
		p.Error = err.Error()
		return p
	}
	p.Reachable, p.FreshnessP99Seconds = true, a.freshness
	if a.alerts != nil {
		p.FiringAlerts = a.alerts
	}
	return p
}
