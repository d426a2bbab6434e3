package service_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orderflow/orderflow/shared/deadletter"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// The projector exports how many dead letters wait: every poison event it
// dead-letters counts, and an entry marked worked off (as orderctl dlq
// replay marks it) no longer does.
func TestDeadLetterGaugeCountsWaitingEntries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testinfra.Shards(t, 2))
	svc, _ := e.start(e.config())
	unresolved := `orderflow_dlq_unresolved_messages{topic="` + e.dlq + `"}`
	retained := `orderflow_dlq_messages{topic="` + e.dlq + `"}`
	testinfra.Eventually(t, 10*time.Second, func() bool {
		return strings.Contains(scrapeText(t, svc.HTTPAddr()), "\n"+unresolved+" 0\n")
	}, "the empty DLQ is not exported as 0")

	const n = 5
	msgs := make([]*sarama.ProducerMessage, n)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{Key: sarama.StringEncoder(fmt.Sprint(i + 1)), Value: sarama.ByteEncoder("not a protobuf \xff")}
	}
	e.produce(msgs...)
	testinfra.Eventually(t, 30*time.Second, func() bool {
		return testinfra.MetricSum(t, svc.HTTPAddr(), unresolved) == n && testinfra.MetricSum(t, svc.HTTPAddr(), retained) == n
	}, "%v dead letters waiting, %v retained, want %d", testinfra.MetricSum(t, svc.HTTPAddr(), unresolved),
		testinfra.MetricSum(t, svc.HTTPAddr(), retained), n)

	// Two entries worked off, and one mark of a message the topic never
	// held (an earlier topic's, say), which must not count.
	var marks []any
	for _, off := range []int64{0, 3, 99} {
		marks = append(marks, bson.D{{Key: "_id", Value: fmt.Sprintf("%s/0/%d", e.dlq, off)}, {Key: "topic", Value: e.dlq},
			{Key: "partition", Value: int32(0)}, {Key: "offset", Value: off}, {Key: "resolution", Value: "discarded"}})
	}
	if _, err := e.db.Collection(deadletter.ResolvedCollection).InsertMany(t.Context(), marks); err != nil {
		t.Fatal(err)
	}
	testinfra.Eventually(t, 30*time.Second, func() bool {
		return testinfra.MetricSum(t, svc.HTTPAddr(), unresolved) == n-2 && testinfra.MetricSum(t, svc.HTTPAddr(), retained) == n
	}, "%v dead letters waiting after two were worked off, want %d", testinfra.MetricSum(t, svc.HTTPAddr(), unresolved), n-2)
}

// scrapeText is the text of one /metrics scrape.
func scrapeText(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
