package main

import (
	"slices"
	"testing"
	"time"
)

func TestPlan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		faults  string
		down    time.Duration
		short   bool
		cluster bool
		want    []string
		downs   []time.Duration
		wantErr bool
	}{
		{name: "all faults in order, shard and hang faults at least 30 s", faults: "all", down: 10 * time.Second,
			want: []string{"relay-kill", "projector-kill", "kafka-kill", "shard-kill", "command-kill", "store-kill",
				"shard-hang", "kafka-hang", "store-hang"},
			downs: []time.Duration{10 * time.Second, 10 * time.Second, 10 * time.Second, 30 * time.Second, 10 * time.Second,
				10 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}},
		{name: "a chosen list keeps the suite's order", faults: "store-kill, relay-kill", down: 45 * time.Second,
			want: []string{"relay-kill", "store-kill"}, downs: []time.Duration{45 * time.Second, 45 * time.Second}},
		{name: "the short subset has its own down times", faults: "all", down: time.Minute, short: true,
			want:  []string{"relay-kill", "projector-kill", "kafka-kill", "shard-kill", "store-kill"},
			downs: []time.Duration{10 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second, 15 * time.Second}},
		{name: "a cluster kills the controller's broker and one instance of each service instead of the only ones", faults: "all",
			down: 10 * time.Second, cluster: true,
			want: []string{"relay-kill", "projector-kill", "broker-kill", "shard-kill", "command-instance-kill", "query-instance-kill",
				"store-kill", "shard-hang", "store-hang"},
			downs: []time.Duration{10 * time.Second, 10 * time.Second, 10 * time.Second, 30 * time.Second, 10 * time.Second,
				10 * time.Second, 10 * time.Second, 30 * time.Second, 30 * time.Second}},
		{name: "the cluster's short subset", faults: "all", down: time.Minute, short: true, cluster: true,
			want: []string{"relay-kill", "projector-kill", "broker-kill", "shard-kill", "command-instance-kill", "query-instance-kill", "store-kill"},
			downs: []time.Duration{10 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second, 10 * time.Second,
				10 * time.Second, 15 * time.Second}},
		{name: "a cluster fault on one broker is an error", faults: "broker-kill", wantErr: true},
		{name: "the single broker's kill in a cluster is an error", faults: "kafka-kill", cluster: true, wantErr: true},
		{name: "an unknown fault is an error", faults: "relay-kill,disk-full", wantErr: true},
		{name: "a hang outside the short subset selects nothing", faults: "kafka-hang", short: true, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := plan(tc.faults, tc.down, tc.short, tc.cluster)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("plan = %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			var downs []time.Duration
			for _, p := range got {
				names, downs = append(names, p.name), append(downs, p.down)
			}
			if !slices.Equal(names, tc.want) || !slices.Equal(downs, tc.downs) {
				t.Errorf("plan = %v %v, want %v %v", names, downs, tc.want, tc.downs)
			}
		})
	}
}
