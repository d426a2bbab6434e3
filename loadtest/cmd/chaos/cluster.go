package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"
)

// quorumState is what a KRaft node keeps in its metadata log's
// quorum-state file: the leader of the controller quorum it last saw and
// the epoch of that election.
type quorumState struct {
	LeaderID    int `json:"leaderId"`
	LeaderEpoch int `json:"leaderEpoch"`
}

// activeController is the node (1..) that leads the KRaft controller
// quorum now: the leader of the latest election any running node recorded.
// Each node writes its quorum-state when it learns of an election, so the
// highest epoch among the running nodes names the current leader.
func (s *system) activeController() (int, error) {
	best := quorumState{LeaderID: -1, LeaderEpoch: -1}
	for n := 1; n <= s.kafkaNodes; n++ {
		if _, err := s.infraPID(s.kafkaServer(n)); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.state, "kafka", "node"+strconv.Itoa(n), "data", "__cluster_metadata-0", "quorum-state"))
		if err != nil {
			continue
		}
		var q quorumState
		if err := json.Unmarshal(b, &q); err != nil {
			return 0, fmt.Errorf("node %d quorum-state: %w", n, err)
		}
		if q.LeaderID > 0 && q.LeaderEpoch > best.LeaderEpoch {
			best = q
		}
	}
	if best.LeaderID < 1 {
		return 0, errors.New("no running Kafka node knows a quorum leader")
	}
	return best.LeaderID, nil
}

// killController SIGKILLs the Kafka node that is the active controller (a
// broker too: some partition leaders and group coordinators go with it).
func killController(_ context.Context, s *system) (string, error) {
	n, err := s.activeController()
	if err != nil {
		return "", err
	}
	name := s.kafkaServer(n)
	if err := s.signalInfra(name, syscall.SIGKILL); err != nil {
		return name, err
	}
	return name, nil
}

// restartBroker starts the killed node again (scripts/infra up starts only
// what does not run) and waits until every partition has all its replicas
// in sync again, which is when the cluster can lose another broker.
func restartBroker(ctx context.Context, s *system, target string) error {
	from := time.Now()
	s.healed = 0
	if err := s.infra(ctx, "up"); err != nil {
		return err
	}
	if n, err := s.activeController(); err == nil {
		s.logf("broker restarted; active controller now %s", s.kafkaServer(n))
	}
	deadline := from.Add(3 * time.Minute)
	for {
		behind, err := s.underReplicated()
		if err == nil && behind == 0 {
			s.healed = time.Since(from)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s restarted, but %d partitions still under-replicated after %s (%v)", target, behind, time.Since(from).Round(time.Second), err)
		}
		pause(ctx, 500*time.Millisecond)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// underReplicated counts the partitions (the order topics and the
// consumer offsets) with fewer in-sync replicas than replicas, or no
// leader.
func (s *system) underReplicated() (int, error) {
	cfg := sarama.NewConfig()
	cfg.Net.DialTimeout = 3 * time.Second
	client, err := sarama.NewClient(strings.Split(s.kafkaBrokers(), ","), cfg)
	if err != nil {
		return -1, err
	}
	defer client.Close()
	topics, err := client.Topics()
	if err != nil {
		return -1, err
	}
	behind := 0
	for _, t := range topics {
		if !strings.HasPrefix(t, "orders.") && t != "__consumer_offsets" {
			continue
		}
		parts, err := client.Partitions(t)
		if err != nil {
			return -1, err
		}
		for _, p := range parts {
			replicas, rerr := client.Replicas(t, p)
			isr, ierr := client.InSyncReplicas(t, p)
			_, lerr := client.Leader(t, p)
			if rerr != nil || ierr != nil || lerr != nil || len(isr) < len(replicas) {
				behind++
			}
		}
	}
	return behind, nil
}

// checkReplication proves the cluster is set up to lose a broker: every
// order topic keeps replicas copies of each partition and refuses a write
// that fewer than minISR of them hold (the producers wait for all in-sync
// replicas).
func (s *system) checkReplication(replicas, minISR int) error {
	brokers := strings.Split(s.kafkaBrokers(), ",")
	client, err := sarama.NewClient(brokers, sarama.NewConfig())
	if err != nil {
		return err
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return err
	}
	for _, topic := range []string{"orders.internal.v1", "orders.internal.dlq.v1", "orders.external.v1"} {
		parts, err := client.Partitions(topic)
		if err != nil {
			return fmt.Errorf("%s: %w", topic, err)
		}
		for _, p := range parts {
			r, err := client.Replicas(topic, p)
			if err != nil {
				return fmt.Errorf("%s/%d: %w", topic, p, err)
			}
			if len(r) != replicas {
				return fmt.Errorf("%s/%d has %d replicas, want %d", topic, p, len(r), replicas)
			}
		}
		entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic,
			ConfigNames: []string{"min.insync.replicas"}})
		if err != nil {
			return fmt.Errorf("%s config: %w", topic, err)
		}
		got := ""
		for _, e := range entries {
			if e.Name == "min.insync.replicas" {
				got = e.Value
			}
		}
		if got != strconv.Itoa(minISR) {
			return fmt.Errorf("%s has min.insync.replicas=%q, want %d", topic, got, minISR)
		}
	}
	return nil
}
