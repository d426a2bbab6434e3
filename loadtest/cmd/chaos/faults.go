package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// faultedShard is the shard the shard faults take down (its orders are the
// unhealthy ones during them).
const faultedShard = 1

// fault is one thing that goes wrong: inject breaks it, recover undoes it
// after the down time.
type fault struct {
	name, what string
	// shard is the shard that is down during the fault, -1 for none.
	shard int
	// minDown is the shortest down time the fault is run with.
	minDown time.Duration
	inject  func(ctx context.Context, s *system) (string, error)
	// escalate, when set, runs after the down time: it takes the
	// remaining instance down too (the second relay or projector), so the
	// fault first shows a fail-over and then nothing left to fail over
	// to. Its target is added to inject's (comma-separated) for recover.
	escalate func(ctx context.Context, s *system, target string) (string, error)
	recover  func(ctx context.Context, s *system, target string) error
	// only is the topology the fault belongs to: "single" (one broker,
	// one instance of order-command), "cluster", or "" for both.
	only string
	// alerts are the cause alerts the fault must raise within
	// detectBudget (counted from the escalation when there is one) and
	// that must resolve within resolveBudget of the recovery. The fault
	// is held until they fire (or the budget ran out), at least its down
	// time.
	alerts []wantAlert
}

func killService(name string) func(ctx context.Context, s *system) (string, error) {
	return func(_ context.Context, s *system) (string, error) {
		s.kill(name)
		return name, nil
	}
}

// restartServices starts again every service of a comma-separated target.
func restartServices(ctx context.Context, s *system, target string) error {
	for _, name := range strings.Split(target, ",") {
		if err := s.start(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// killOther kills the one of the pair that inject did not: the last relay
// or projector standing.
func killOther(a, b string) func(ctx context.Context, s *system, target string) (string, error) {
	return func(_ context.Context, s *system, target string) (string, error) {
		other := a
		if target == a {
			other = b
		}
		s.kill(other)
		return other, nil
	}
}

func signalInfra(name string, sig syscall.Signal) func(ctx context.Context, s *system) (string, error) {
	return func(_ context.Context, s *system) (string, error) { return name, s.signalInfra(name, sig) }
}

// infraUp restarts a killed server the way it was started: scripts/infra up
// starts only what does not run.
func infraUp(ctx context.Context, s *system, _ string) error { return s.infra(ctx, "up") }

func cont(_ context.Context, s *system, name string) error {
	return s.signalInfra(name, syscall.SIGCONT)
}

// killShardOwner kills the relay that holds shard 0's lock, so the other
// relay has to take it over.
func killShardOwner(_ context.Context, s *system) (string, error) {
	victim := "relay-a"
	if owner, err := s.shardOwner(); err == nil && strings.HasPrefix(owner, "relay-") {
		victim = owner
	}
	s.kill(victim)
	return victim, nil
}

// shardOwner asks relay-a's admin API which relay owns the first shard.
func (s *system) shardOwner() (string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+s.relayHTTP[0]+"/v1/outbox/stats", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		Shards []struct {
			Owner string `json:"owner"`
		} `json:"shards"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", err
	}
	if len(body.Shards) == 0 {
		return "", fmt.Errorf("no shards in the relay's stats")
	}
	return body.Shards[0].Owner, nil
}

var shardServer = fmt.Sprintf("mysql-shard%d", faultedShard)

// shardUnreachable is the alert of the shard faults, for the faulted shard.
var shardUnreachable = wantAlert{name: "ShardUnreachable", labels: map[string]string{"shard": fmt.Sprintf("shard-%d", faultedShard)}}

// allFaults is every fault, in the order a full run injects them.
var allFaults = []fault{
	{name: "relay-kill", what: "SIGKILL the relay owning shard 0 (the other takes its shards over); after the down time the other too (no relay left); restart both", shard: -1,
		inject: killShardOwner, escalate: killOther("relay-a", "relay-b"), recover: restartServices,
		alerts: []wantAlert{{name: "OutboxShardUnowned"}}},
	{name: "projector-kill", what: "SIGKILL projector-a (the group rebalances to projector-b); after the down time projector-b too (none left); restart both", shard: -1,
		inject: killService("projector-a"), escalate: killOther("projector-a", "projector-b"), recover: restartServices,
		alerts: []wantAlert{{name: "ProjectorNotConsuming"}}},
	{name: "kafka-kill", what: "SIGKILL the Kafka broker, restart", shard: -1,
		only: "single", inject: signalInfra("kafka", syscall.SIGKILL), recover: infraUp, alerts: []wantAlert{{name: "KafkaUnreachable"}}},
	{name: "broker-kill", what: "SIGKILL the Kafka node that is the active KRaft controller (a broker too); the other two elect a controller and keep every partition writable (RF 3, min ISR 2); restart it and wait until every partition is in sync again", shard: -1,
		only: "cluster", inject: killController, recover: restartBroker},
	{name: "shard-kill", what: fmt.Sprintf("SIGKILL MariaDB shard %d, restart after at least 30 s", faultedShard), shard: faultedShard,
		minDown: 30 * time.Second, inject: signalInfra(shardServer, syscall.SIGKILL), recover: infraUp,
		alerts: []wantAlert{shardUnreachable}},
	{name: "command-kill", what: "SIGKILL order-command, restart", shard: -1,
		only: "single", inject: killService("order-command"), recover: restartServices,
		alerts: []wantAlert{{name: "ServiceDown", labels: map[string]string{"job": "order-command"}}}},
	{name: "command-instance-kill", what: "SIGKILL one order-command instance while the other keeps serving (the client's calls move to it), restart", shard: -1,
		only: "cluster", inject: killService("order-command"), recover: restartServices,
		alerts: []wantAlert{{name: "ServiceDown", labels: map[string]string{"job": "order-command"}}}},
	{name: "query-instance-kill", what: "SIGKILL one order-query instance while the other keeps serving, restart", shard: -1,
		only: "cluster", inject: killService("order-query"), recover: restartServices,
		alerts: []wantAlert{{name: "ServiceDown", labels: map[string]string{"job": "order-query"}}}},
	{name: "store-kill", what: "SIGKILL the read store (MongoDB stand-in, journaled), restart", shard: -1,
		inject: signalInfra("mongo", syscall.SIGKILL), recover: infraUp, alerts: []wantAlert{{name: "ReadStoreUnreachable"}}},
	{name: "shard-hang", what: fmt.Sprintf("SIGSTOP MariaDB shard %d, SIGCONT after at least 30 s", faultedShard), shard: faultedShard,
		minDown: 30 * time.Second, inject: signalInfra(shardServer, syscall.SIGSTOP), recover: cont,
		alerts: []wantAlert{shardUnreachable}},
	{name: "kafka-hang", what: "SIGSTOP the Kafka broker, SIGCONT after at least 30 s", shard: -1,
		only: "single", minDown: 30 * time.Second, inject: signalInfra("kafka", syscall.SIGSTOP), recover: cont,
		alerts: []wantAlert{{name: "KafkaUnreachable"}}},
	{name: "store-hang", what: "SIGSTOP the read store, SIGCONT after at least 30 s", shard: -1,
		minDown: 30 * time.Second, inject: signalInfra("mongo", syscall.SIGSTOP), recover: cont,
		alerts: []wantAlert{{name: "ReadStoreUnreachable"}}},
}

// shortFaults is the CI subset (make test) with its down times. Each fault
// is held until its alerts fire (35-45 s with their 30 s `for`), so these
// are the least down times, not the actual ones.
var shortFaults = map[string]time.Duration{
	"relay-kill": 10 * time.Second, "projector-kill": 10 * time.Second, "kafka-kill": 15 * time.Second,
	"shard-kill": 30 * time.Second, "store-kill": 15 * time.Second,
	"broker-kill": 15 * time.Second, "command-instance-kill": 10 * time.Second, "query-instance-kill": 10 * time.Second,
}

// planned is a fault with the down time it is run with.
type planned struct {
	fault
	down time.Duration
}

// plan picks the faults of the topology (cluster or not) to run: names
// (comma-separated, "all" for every one) with down time each, or the short
// subset with its own.
func plan(names string, down time.Duration, short, cluster bool) ([]planned, error) {
	mode := "single"
	if cluster {
		mode = "cluster"
	}
	var out []planned
	want := map[string]bool{}
	if names != "" && names != "all" {
		for _, n := range strings.Split(names, ",") {
			want[strings.TrimSpace(n)] = true
		}
	}
	known := map[string]bool{}
	for _, f := range allFaults {
		known[f.name] = true
		if f.only != "" && f.only != mode {
			if want[f.name] {
				return nil, fmt.Errorf("fault %s needs the %s topology", f.name, f.only)
			}
			continue
		}
		d := down
		if short {
			var ok bool
			if d, ok = shortFaults[f.name]; !ok {
				continue
			}
		}
		if len(want) > 0 && !want[f.name] {
			continue
		}
		out = append(out, planned{fault: f, down: max(d, f.minDown)})
	}
	for n := range want {
		if !known[n] {
			return nil, fmt.Errorf("unknown fault %q", n)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no fault selected")
	}
	return out, nil
}
