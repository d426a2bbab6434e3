package cli_test

import (
	"io"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/services/orderctl/internal/cli"
)

// orderctl reads the services' ORDERFLOW_* variables with their library and
// defaults; every flag that locates the system defaults to them.
func TestSettingsAreTheFlagDefaults(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"ORDERFLOW_TOPOLOGY_FILE": "/etc/orderflow/topology.json", "ORDERFLOW_MONGO_URI": "mongodb://read:27017",
		"ORDERFLOW_MONGO_DATABASE": "orders_eu", "ORDERFLOW_KAFKA_BROKERS": "k1:9092,k2:9092",
		"ORDERFLOW_PROJECTOR_GROUP": "proj-eu", "ORDERFLOW_DLQ_TOPIC": "dlq-eu", "ORDERFLOW_PROMETHEUS_URL": "http://prom:9090",
	}
	set, err := cli.LoadSettings(env)
	if err != nil {
		t.Fatal(err)
	}
	defaults, err := cli.LoadSettings(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		settings cli.Settings
		command  string
		flag     string
		want     string
	}{
		{name: "purge's database", settings: set, command: "orders purge", flag: "mongo-database", want: "orders_eu"},
		{name: "retire-epoch's database", settings: set, command: "shards retire-epoch", flag: "mongo-database", want: "orders_eu"},
		{name: "verify's database", settings: set, command: "verify", flag: "mongo-database", want: "orders_eu"},
		{name: "purge's read side", settings: set, command: "orders purge", flag: "mongo", want: "mongodb://read:27017"},
		{name: "outbox topology", settings: set, command: "outbox stats", flag: "topology", want: "/etc/orderflow/topology.json"},
		{name: "create-topics brokers", settings: set, command: "kafka create-topics", flag: "brokers", want: "k1:9092,k2:9092"},
		{name: "dlq topic", settings: set, command: "dlq list", flag: "dlq-topic", want: "dlq-eu"},
		{name: "status group", settings: set, command: "status", flag: "group", want: "[proj-eu]"},
		{name: "status prometheus", settings: set, command: "status", flag: "prometheus", want: "http://prom:9090"},
		{name: "default database is the services' default", settings: defaults, command: "orders purge", flag: "mongo-database", want: "orderflow"},
		{name: "default topology", settings: defaults, command: "readmodel rebuild", flag: "topology", want: ".state/topology.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := cli.NewWithSettings(io.Discard, io.Discard, tc.settings)
			cmd, _, err := root.Find(strings.Fields(tc.command))
			if err != nil {
				t.Fatal(err)
			}
			f := cmd.Flags().Lookup(tc.flag)
			if f == nil {
				f = cmd.InheritedFlags().Lookup(tc.flag)
			}
			if f == nil {
				t.Fatalf("%s has no --%s", tc.command, tc.flag)
			}
			if f.DefValue != tc.want {
				t.Errorf("%s --%s defaults to %q, want %q", tc.command, tc.flag, f.DefValue, tc.want)
			}
		})
	}
}

// A flag given on the command line wins over the setting.
func TestFlagOverridesSetting(t *testing.T) {
	t.Parallel()
	s, err := cli.LoadSettings(map[string]string{"ORDERFLOW_MONGO_DATABASE": "from_env"})
	if err != nil {
		t.Fatal(err)
	}
	root := cli.NewWithSettings(io.Discard, io.Discard, s)
	cmd, _, err := root.Find([]string{"orders", "purge"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.ParseFlags([]string{"--mongo-database", "from_flag"}); err != nil {
		t.Fatal(err)
	}
	if got := cmd.Flags().Lookup("mongo-database").Value.String(); got != "from_flag" {
		t.Errorf("--mongo-database = %q, want the flag's from_flag", got)
	}
}
