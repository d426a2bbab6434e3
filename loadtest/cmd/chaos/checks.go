package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/orderflow/orderflow/loadtest/internal/bench"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/shard"
)

// LostOrder is a confirmed order the read side does not show at its
// confirmed version.
type LostOrder struct {
	OrderNo   int64  `json:"orderNo"`
	RequestID string `json:"requestId"`
	Shard     int    `json:"shard"`
	Version   int64  `json:"version"`
	// ReadSide is what order-query holds for it at the end.
	ReadSide string `json:"readSide"`
	// Window is the fault (or "baseline") during which it was confirmed.
	Window string `json:"window"`
	// SeenEarlier: the query API showed that version during the run, so
	// the read side lost what it had.
	SeenEarlier bool `json:"seenEarlier"`
}

// DLQEntry is one event on the dead-letter topic.
type DLQEntry struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	OrderNo   string `json:"orderNo"`
	Error     string `json:"error"`
	At        string `json:"at"`
}

// readSideOf says what order-query answers for the order now.
func readSideOf(ctx context.Context, c *client, no int64) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := c.query.GetOrder(ctx, &orderv1.GetOrderViewRequest{OrderNo: no})
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("version %d, %s", resp.GetOrder().GetVersion(), resp.GetOrder().GetStatus())
}

// shardRows reads every order of the run from the shards: request id to
// the order numbers (with their shard) that carry it.
func shardRows(ctx context.Context, topologyFile, runID string) (map[string][]string, error) {
	topo, err := shard.LoadTopology(topologyFile)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, sp := range topo.Shards {
		db, err := shard.OpenDB(sp.DSN, bench.Pool)
		if err != nil {
			return nil, err
		}
		rows, err := db.QueryContext(ctx, "SELECT request_id, order_no FROM orders WHERE request_id LIKE ?", "chaos-"+runID+"-%")
		if err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("%s: %w", sp.Name, err)
		}
		for rows.Next() {
			var id string
			var no int64
			if err := rows.Scan(&id, &no); err != nil {
				_ = rows.Close()
				_ = db.Close()
				return nil, err
			}
			out[id] = append(out[id], fmt.Sprintf("%d@%s", no, sp.Name))
		}
		err = rows.Err()
		_ = rows.Close()
		_ = db.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sp.Name, err)
		}
	}
	return out, nil
}

// verify runs orderctl verify over the whole private system.
func verify(ctx context.Context, s *system) (bool, string) {
	out, err := exec.CommandContext(ctx, s.orderctl(), "verify", "--topology", s.topologyFile(),
		"--mongo", s.mongoURI(), "--show", "50").CombinedOutput()
	return err == nil, strings.TrimSpace(string(out))
}

// dlq reads the dead-letter topic: how many events it holds and the first
// of them with the reason the projector gave.
func dlq(brokers string) (int64, []DLQEntry, error) {
	cfg := sarama.NewConfig()
	cfg.Consumer.Return.Errors = true
	client, err := sarama.NewClient(strings.Split(brokers, ","), cfg)
	if err != nil {
		return 0, nil, err
	}
	defer client.Close()
	const topic = "orders.internal.dlq.v1"
	parts, err := client.Partitions(topic)
	if err != nil {
		return 0, nil, err
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return 0, nil, err
	}
	defer consumer.Close()
	var total int64
	var entries []DLQEntry
	for _, p := range parts {
		oldest, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return 0, nil, err
		}
		newest, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0, nil, err
		}
		total += newest - oldest
		if newest == oldest || len(entries) >= 100 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, oldest)
		if err != nil {
			return 0, nil, err
		}
	read:
		for len(entries) < 100 {
			select {
			case m := <-pc.Messages():
				e := DLQEntry{Partition: p, Offset: m.Offset, OrderNo: string(m.Key)}
				for _, h := range m.Headers {
					switch string(h.Key) {
					case "dlq-error":
						e.Error = string(h.Value)
					case "dlq-at":
						e.At = string(h.Value)
					}
				}
				entries = append(entries, e)
				if m.Offset+1 >= newest {
					break read
				}
			case <-time.After(10 * time.Second):
				break read
			}
		}
		_ = pc.Close()
	}
	return total, entries, nil
}
