package tests

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/orderflow/orderflow/shared/authclient"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/observability/otlptest"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
)

// tracedPipeline is order-command, a relay, a projector and order-query as
// processes, each with the OpenTelemetry variables a test gives it.
type tracedPipeline struct {
	*pipeline
	topo     shard.Topology
	internal string
	external string
	procs    []*proc
}

func startTracedPipeline(t *testing.T, commandEnv, otherEnv []string) *tracedPipeline {
	t.Helper()
	topo := testinfra.Shards(t, 2)
	file := writeTopology(t, topo)
	internal, external, dlq := testinfra.KafkaTopic(t, 3), testinfra.KafkaTopic(t, 3), testinfra.KafkaTopic(t, 1)
	db := testinfra.MongoDatabase(t)
	p := &pipeline{t: t, command: addr(t), commandGRPC: addr(t), query: addr(t), queryGRPC: addr(t), topologyFile: file, mongoDatabase: db.Name(),
		auth: testinfra.NewAuth(t)}
	var procs []*proc
	// Every service verifies tokens with the pipeline's key.
	commandEnv, otherEnv = append(p.auth.Env(), commandEnv...), append(p.auth.Env(), otherEnv...)
	procs = append(procs, startProc(t, "order-command", p.command, append([]string{"ORDERFLOW_TOPOLOGY_FILE=" + file, "ORDERFLOW_HTTP_ADDR=" + p.command,
		"ORDERFLOW_GRPC_ADDR=" + p.commandGRPC, "ORDERFLOW_LOG_LEVEL=warn"}, commandEnv...)...))
	relay := startRelayProc(t, "traced", file, internal, otherEnv...)
	p.relayHTTP = relay.http
	procs = append(procs, relay.proc)
	http := addr(t)
	procs = append(procs, startProc(t, "order-projector", http, append([]string{"ORDERFLOW_TOPOLOGY_FILE=" + file, "ORDERFLOW_HTTP_ADDR=" + http,
		"ORDERFLOW_KAFKA_BROKERS=" + strings.Join(testinfra.KafkaBrokers(), ","), "ORDERFLOW_PROJECTOR_TOPIC=" + internal,
		"ORDERFLOW_EXTERNAL_TOPIC=" + external, "ORDERFLOW_DLQ_TOPIC=" + dlq, "ORDERFLOW_PROJECTOR_GROUP=" + testinfra.UniqueName(t, "projector"),
		"ORDERFLOW_MONGO_URI=" + testinfra.MongoURI(), "ORDERFLOW_MONGO_DATABASE=" + db.Name(), "ORDERFLOW_LOG_LEVEL=warn"}, otherEnv...)...))
	procs = append(procs, startProc(t, "order-query", p.query, append([]string{"ORDERFLOW_TOPOLOGY_FILE=" + file, "ORDERFLOW_HTTP_ADDR=" + p.query, "ORDERFLOW_GRPC_ADDR=" + p.queryGRPC,
		"ORDERFLOW_MONGO_URI=" + testinfra.MongoURI(), "ORDERFLOW_MONGO_DATABASE=" + db.Name(), "ORDERFLOW_LOG_LEVEL=warn"}, otherEnv...)...))
	return &tracedPipeline{pipeline: p, topo: topo, internal: internal, external: external, procs: procs}
}

// placeGRPC places an order through the gRPC API, as its user, and returns
// its number.
func (p *tracedPipeline) placeGRPC(requestID string) string {
	p.t.Helper()
	conn, err := grpc.NewClient(p.commandGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(authclient.Bearer(p.auth.User("u-trace"))))
	if err != nil {
		p.t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := orderv1.NewOrderCommandServiceClient(conn).PlaceOrder(ctx, &orderv1.PlaceOrderRequest{RequestId: requestID, UserId: "u-trace",
		ShopId: "s-trace", DeliveryAddress: "Seoul", Items: []*orderv1.OrderItem{{MenuId: "m-1", Name: "Bibimbap", Quantity: 1, UnitPrice: 9000}}})
	if err != nil {
		p.t.Fatalf("PlaceOrder: %v", err)
	}
	return strconv.FormatInt(resp.GetOrder().GetOrderNo(), 10)
}

// readable waits until order-query serves the order.
func (p *tracedPipeline) readable(no string) {
	p.t.Helper()
	testinfra.Eventually(p.t, 30*time.Second, func() bool {
		code, _ := p.do("GET", fmt.Sprintf("http://%s/v1/orders/%s?minVersion=1", p.query, no), "")
		return code == 200
	}, "order %s never became readable", no)
}

// storedTraceparent is the traceparent on the order's outbox row.
func (p *tracedPipeline) storedTraceparent(no string) string {
	p.t.Helper()
	for _, s := range p.topo.Shards {
		var tp string
		if err := testinfra.DB(p.t, s.DSN).QueryRow("SELECT traceparent FROM outbox WHERE order_no = ?", no).Scan(&tp); err == nil {
			return tp
		}
	}
	p.t.Fatalf("order %s has no outbox row", no)
	return ""
}

// externalTraceparent waits for the order's external event and returns its
// traceparent header.
func (p *tracedPipeline) externalTraceparent(no string) string {
	p.t.Helper()
	consumer, err := sarama.NewConsumer(testinfra.KafkaBrokers(), kafkax.NewConfig("tracing-test"))
	if err != nil {
		p.t.Fatal(err)
	}
	defer consumer.Close()
	found := make(chan string, 1)
	parts, err := consumer.Partitions(p.external)
	if err != nil {
		p.t.Fatal(err)
	}
	for _, part := range parts {
		pc, err := consumer.ConsumePartition(p.external, part, sarama.OffsetOldest)
		if err != nil {
			p.t.Fatal(err)
		}
		defer pc.Close()
		go func() {
			for m := range pc.Messages() {
				if string(m.Key) == no {
					select {
					case found <- kafkax.ConsumerHeaders(m.Headers).Get(kafkax.HeaderTraceparent):
					default:
					}
				}
			}
		}()
	}
	select {
	case tp := <-found:
		return tp
	case <-time.After(30 * time.Second):
		p.t.Fatalf("no external event of order %s within 30 s", no)
		return ""
	}
}

// traceIDOf is the trace id of a traceparent value.
func traceIDOf(tp string) string {
	if parts := strings.Split(tp, "-"); len(parts) == 4 {
		return parts[1]
	}
	return ""
}

// spanOf finds a span named name of service whose attribute key
// is value ("" key: any).
func spanOf(spans []otlptest.Span, service, name, key, value string) (otlptest.Span, bool) {
	for _, s := range spans {
		if s.Service == service && s.Name == name && (key == "" || s.Attributes[key] == value) {
			return s, true
		}
	}
	return otlptest.Span{}, false
}

// One order is one trace from the API to the read side: the command's
// server span, its shard transaction, the relay's publish (continuing the
// context stored on the outbox row), the projector's event span (continuing
// the Kafka header) with its re-read and MongoDB write, and the external
// event carrying it on; order-query's read is a trace of its own with its
// MongoDB read under the request. order-command exports over OTLP/gRPC, the
// others over OTLP/HTTP.
func TestOneTracePerOrder(t *testing.T) {
	testinfra.Integration(t)
	t.Parallel()
	receiver := otlptest.Start(t)
	common := []string{"OTEL_TRACES_SAMPLER=parentbased_always_on", "OTEL_BSP_SCHEDULE_DELAY=100"}
	p := startTracedPipeline(t,
		append([]string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + receiver.GRPCEndpoint(), "OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
			"OTEL_EXPORTER_OTLP_INSECURE=true"}, common...),
		append([]string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + receiver.HTTPEndpoint(), "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"}, common...))

	tests := []struct {
		name  string
		place func() string
		// restSpan is the REST request's span above the gRPC server span
		// of the gateway's in-process call; "" over gRPC.
		restSpan string
	}{
		{name: "REST", place: func() string { return p.place("trace-rest", "u-trace", "s-trace") }, restSpan: "POST /v1/orders"},
		{name: "gRPC", place: func() string { return p.placeGRPC("trace-grpc") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Cleanup(func() {
				if t.Failed() {
					for _, s := range receiver.Spans() {
						t.Logf("received %s %q kind %v trace %s span %s parent %s %v", s.Service, s.Name, s.Kind, s.TraceID, s.SpanID, s.ParentID, s.Attributes)
					}
				}
			})
			no := tt.place()
			p.readable(no)
			external := p.externalTraceparent(no)
			stored := p.storedTraceparent(no)
			trace := traceIDOf(stored)

			var tx, relay, event, reread, write, publish otlptest.Span
			testinfra.Eventually(t, 20*time.Second, func() bool {
				var ok [6]bool
				spans := receiver.Spans()
				tx, ok[0] = spanOf(spans, "order-command", "shard tx place order", "orderflow.order_no", no)
				relay, ok[1] = spanOf(spans, "outbox-relay", "publish "+p.internal, "orderflow.order_no", no)
				event, ok[2] = spanOf(spans, "order-projector", "process "+p.internal, "orderflow.order_no", no)
				reread, ok[3] = spanOf(spans, "order-projector", "reread orders", "orderflow.order_no", no)
				write, ok[4] = spanOf(spans, "order-projector", "write documents", "orderflow.order_no", no)
				publish, ok[5] = spanOf(spans, "order-projector", "publish external events", "orderflow.order_no", no)
				return ok == [6]bool{true, true, true, true, true, true}
			}, "the spans of order %s never all arrived", no)
			spans := receiver.Spans()
			var server otlptest.Span
			for _, s := range spans {
				if s.Service == "order-command" && s.SpanID == tx.ParentID {
					server = s
				}
			}
			const placeOrder = "orderflow.order.v1.OrderCommandService/PlaceOrder"
			if server.Name != placeOrder || server.Kind != tracev1.Span_SPAN_KIND_SERVER || server.Protocol != "grpc" {
				t.Errorf("shard tx span's parent %s is not the command's %s server span over OTLP/gRPC: %+v", tx.ParentID, placeOrder, server)
			}
			if tt.restSpan == "" && server.ParentID != "" {
				t.Errorf("gRPC server span %s has parent %s, want a root span", server.SpanID, server.ParentID)
			}
			if tt.restSpan != "" {
				var rest otlptest.Span
				for _, s := range spans {
					if s.Service == "order-command" && s.SpanID == server.ParentID {
						rest = s
					}
				}
				if rest.Name != tt.restSpan || rest.Kind != tracev1.Span_SPAN_KIND_SERVER || rest.ParentID != "" {
					t.Errorf("gRPC server span's parent %s is not the root REST span %q: %+v", server.ParentID, tt.restSpan, rest)
				}
			}
			if stored != "00-"+server.TraceID+"-"+server.SpanID+"-01" {
				t.Errorf("outbox row stores %q, want the server span's context (trace %s span %s)", stored, server.TraceID, server.SpanID)
			}
			if relay.Kind != tracev1.Span_SPAN_KIND_PRODUCER || relay.ParentID != server.SpanID {
				t.Errorf("relay span %q kind %v parent %s, want a producer span under the stored span %s", relay.Name, relay.Kind, relay.ParentID, server.SpanID)
			}
			if event.Kind != tracev1.Span_SPAN_KIND_CONSUMER || event.ParentID != relay.SpanID {
				t.Errorf("projector span %q kind %v parent %s, want a consumer span under the relay's %s", event.Name, event.Kind, event.ParentID, relay.SpanID)
			}
			for _, step := range []otlptest.Span{reread, write, publish} {
				if step.ParentID != event.SpanID {
					t.Errorf("step %q parent %s, want the projector's event span %s", step.Name, step.ParentID, event.SpanID)
				}
			}
			// database/sql statements (otelsql) under the shard
			// transaction and under the projector's re-read, on their shard.
			// A PlaceOrder's statements run in its group commit, whose span
			// ("shard tx order group") is a child of the transaction
			// span of the group's first caller: this order's, when alone.
			for _, parent := range []otlptest.Span{tx, reread} {
				var statements []string
				testinfra.Eventually(t, 20*time.Second, func() bool {
					statements = statements[:0]
					spans := receiver.Spans()
					under := map[string]bool{parent.SpanID: true}
					for _, s := range spans {
						if s.ParentID == parent.SpanID && s.Name == "shard tx order group" {
							under[s.SpanID] = true
						}
					}
					for _, s := range spans {
						if under[s.ParentID] && strings.HasPrefix(s.Name, "sql.") && s.Kind == tracev1.Span_SPAN_KIND_CLIENT &&
							strings.HasPrefix(s.Attributes["orderflow.shard"], "shard-") && s.Attributes["db.system.name"] == "mysql" {
							statements = append(statements, s.Name)
						}
					}
					return slices.Contains(statements, "sql.conn.query") || slices.Contains(statements, "sql.conn.exec")
				}, "no database/sql statement span under %s %q (got %v)", parent.Service, parent.Name, statements)
			}
			if external != "00-"+publish.TraceID+"-"+publish.SpanID+"-01" {
				t.Errorf("external event traceparent %q, want the publish step's span %s", external, publish.SpanID)
			}
			for _, s := range []otlptest.Span{server, tx, relay, event, reread, write, publish} {
				if s.TraceID != trace {
					t.Errorf("span %q of %s in trace %s, want the order's %s", s.Name, s.Service, s.TraceID, trace)
				}
			}

			testinfra.Eventually(t, 20*time.Second, func() bool {
				for _, s := range receiver.Spans() {
					if s.Service == "order-query" && s.Name == "find order document" && s.Attributes["orderflow.order_no"] == no {
						for _, parent := range receiver.Spans() {
							if parent.SpanID == s.ParentID && parent.Service == "order-query" && parent.Kind == tracev1.Span_SPAN_KIND_SERVER {
								return true
							}
						}
					}
				}
				return false
			}, "order-query's MongoDB read of order %s never arrived under its request span", no)
		})
	}
}

// Without an endpoint (order-command) or with export turned off
// (OTEL_TRACES_EXPORTER=none, the others, whose endpoint is the receiver),
// nothing is exported, even with every trace sampled and after the
// processes flushed on shutdown, and the pipeline runs as before: the order
// reaches the read side, and its trace id still goes from the outbox row to
// the external event (ids exist without export).
func TestTracingOffExportsNothing(t *testing.T) {
	testinfra.Integration(t)
	t.Parallel()
	receiver := otlptest.Start(t)
	sampled := []string{"OTEL_TRACES_SAMPLER=always_on", "OTEL_BSP_SCHEDULE_DELAY=100"}
	p := startTracedPipeline(t,
		append([]string{"OTEL_EXPORTER_OTLP_ENDPOINT=", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=", "OTEL_TRACES_EXPORTER="}, sampled...),
		append([]string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + receiver.HTTPEndpoint(), "OTEL_TRACES_EXPORTER=none"}, sampled...))
	no := p.place("tracing-off", "u-plain", "s-plain")
	p.readable(no)
	stored, external := p.storedTraceparent(no), p.externalTraceparent(no)
	if traceIDOf(stored) == "" || traceIDOf(external) != traceIDOf(stored) {
		t.Errorf("outbox row traceparent %q and external event's %q: want one trace id", stored, external)
	}
	for _, proc := range p.procs {
		proc.stop() // Shutdown flushes whatever a batch processor would hold
	}
	if n := len(receiver.Spans()); n != 0 {
		t.Errorf("%d spans exported with tracing off", n)
	}
}
