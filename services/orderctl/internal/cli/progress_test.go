package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/services/orderctl/internal/cli"
	"github.com/orderflow/orderflow/services/orderctl/internal/dlq"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// A rebuild and a dead-letter replay run with --metrics-listen serve their
// progress while they run and, during the linger, the finished run: done
// reached planned, running 0. Cancelling (Ctrl-C) cuts the linger short.
func TestRepairProgressMetrics(t *testing.T) {
	t.Parallel()
	r := newReadSide(t)
	const n = 9
	for no := int64(1); no <= n; no++ {
		r.shards.Put(t, no, 2, placedAt)
	}
	var letters []deadLetter
	for no := int64(1); no <= 4; no++ {
		letters = append(letters, deadLetter{int32(no % 2), fmt.Sprint(no), event(no, 2, "OrderAccepted"),
			headers(dlq.ReasonRetriesExhausted, "writing documents: timeout", "orders.internal.v1/0/1", "OrderAccepted", fmt.Sprintf("ev-%d-2", no), no, placedAt)})
	}
	produce(t, r.dlqTopic, letters...)

	cases := []struct {
		name, command string
		args          []string
		want          float64
		summary       string
	}{
		{name: "rebuild", command: "readmodel-rebuild", args: []string{"readmodel", "rebuild", "--batch", "2"}, want: n,
			summary: "rebuild: orders=9 written=9"},
		{name: "dlq replay", command: "dlq-replay", args: []string{"dlq", "replay", "--batch", "1", "--reason", "test"}, want: 4,
			summary: "entries=4 replayed=4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr := freeAddr(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out bytes.Buffer
			done := make(chan error, 1)
			go func() {
				cmd := cli.New(&out, &out)
				cmd.SetArgs(append(c.args, "--metrics-listen", addr, "--metrics-linger", "2m", "--topology", r.shards.File,
					"--mongo", testinfra.MongoURI(), "--mongo-database", r.mdb.Name(), "--brokers", strings.Join(testinfra.KafkaBrokers(), ","),
					"--dlq-topic", r.dlqTopic, "--external-topic", r.extTopic))
				done <- cmd.ExecuteContext(ctx)
			}()
			series := func(name string) string { return fmt.Sprintf(`%s{command="%s"}`, name, c.command) }
			value := func(name string) float64 {
				v, err := testinfra.SumMetrics(addr, series(name))
				if err != nil {
					return -1 // not listening yet
				}
				return v
			}
			testinfra.Eventually(t, 60*time.Second, func() bool {
				return value("orderflow_repair_planned") == c.want && value("orderflow_repair_done_total") == c.want &&
					value("orderflow_repair_running") == 0
			}, "progress: planned %v, done %v, running %v; want %v, %v, 0", value("orderflow_repair_planned"),
				value("orderflow_repair_done_total"), value("orderflow_repair_running"), c.want, c.want)
			cancel()
			select {
			case err := <-done:
				if err != nil || !strings.Contains(out.String(), c.summary) {
					t.Errorf("%v: %v\n%s", c.args, err, out.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatal("cancelling did not cut the metrics linger short")
			}
		})
	}
}
