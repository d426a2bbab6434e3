package service_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	outboxv1 "github.com/orderflow/orderflow/shared/gen/orderflow/outbox/v1"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// Every bad admin request, REST or gRPC, is INVALID_ARGUMENT (HTTP 400)
// naming the bad field, and changes nothing: no FAILED row is put back to
// PENDING and no replay is audited. An unknown enum number in particular is
// refused, never read as "no status given" (which, for a replay, would
// replay every FAILED row).
func TestAdminRefusesBadRequests(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 2)
	const failedPerShard = 3
	for i, s := range topo.Shards {
		db := testinfra.DB(t, s.DSN)
		for j := range failedPerShard {
			if _, err := db.Exec(`INSERT INTO outbox (event_id, event_type, order_no, order_version, occurred_at, status, attempts, last_error)
				VALUES (?, 'OrderPlaced', ?, 1, NOW(6), 'FAILED', 10, 'broker said no')`, uuid.NewString(), i*1000+j+1); err != nil {
				t.Fatal(err)
			}
		}
	}
	svc := startRelay(t, testConfig(testinfra.KafkaTopic(t, 1), testinfra.KafkaBrokers()), topo)
	conn, err := grpc.NewClient(svc.AdminGRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client := outboxv1.NewOutboxAdminServiceClient(conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)

	outOfRange := &timestamppb.Timestamp{Seconds: 253402300800} // 10000-01-01
	badNanos := &timestamppb.Timestamp{Seconds: 1767225600, Nanos: 1_000_000_000}
	negativeNanos := &timestamppb.Timestamp{Seconds: 1767225600, Nanos: -1}
	replay := func(r *outboxv1.ReplayOutboxMessagesRequest) func() error {
		return func() error {
			r.Reason = "topic fixed"
			_, err := client.ReplayOutboxMessages(ctx, r)
			return err
		}
	}
	list := func(r *outboxv1.ListOutboxMessagesRequest) func() error {
		return func() error {
			_, err := client.ListOutboxMessages(ctx, r)
			return err
		}
	}
	grpcCases := []struct {
		name  string
		call  func() error
		field string
	}{
		{"list: unknown status number", list(&outboxv1.ListOutboxMessagesRequest{Status: 42}), "status"},
		{"list: since out of range", list(&outboxv1.ListOutboxMessagesRequest{Since: outOfRange}), "since"},
		{"list: until with negative nanos", list(&outboxv1.ListOutboxMessagesRequest{Until: negativeNanos}), "until"},
		{"list: since after until", list(&outboxv1.ListOutboxMessagesRequest{Since: timestamppb.Now(), Until: &timestamppb.Timestamp{Seconds: 1}}), "until"},
		{"get: id zero", func() error {
			_, err := client.GetOutboxMessage(ctx, &outboxv1.GetOutboxMessageRequest{Shard: "shard-0"})
			return err
		}, "id"},
		{"get: negative id", func() error {
			_, err := client.GetOutboxMessage(ctx, &outboxv1.GetOutboxMessageRequest{Shard: "shard-0", Id: -7})
			return err
		}, "id"},
		{"replay: unknown filter status number", replay(&outboxv1.ReplayOutboxMessagesRequest{Filter: &outboxv1.MessageFilter{Status: 42}}), "filter.status"},
		{"replay: filter since with nanos too large", replay(&outboxv1.ReplayOutboxMessagesRequest{Filter: &outboxv1.MessageFilter{Since: badNanos}}), "filter.since"},
		{"replay: filter until out of range", replay(&outboxv1.ReplayOutboxMessagesRequest{Filter: &outboxv1.MessageFilter{Until: outOfRange}}), "filter.until"},
		{"replay: id zero", replay(&outboxv1.ReplayOutboxMessagesRequest{Shard: "shard-0", Ids: []int64{1, 0}}), "ids[1]"},
		{"replay: ids and an empty filter", replay(&outboxv1.ReplayOutboxMessagesRequest{Shard: "shard-0", Ids: []int64{1}, Filter: &outboxv1.MessageFilter{}}), "filter"},
		{"replay: two shards", replay(&outboxv1.ReplayOutboxMessagesRequest{Shard: "shard-0", Filter: &outboxv1.MessageFilter{Shard: "shard-1"}}), "filter.shard"},
	}
	for _, tc := range grpcCases {
		t.Run("gRPC "+tc.name, func(t *testing.T) {
			err := tc.call()
			st := status.Convert(err)
			if st.Code() != codes.InvalidArgument {
				t.Fatalf("%v, want InvalidArgument", err)
			}
			var fields []string
			for _, d := range st.Details() {
				if br, ok := d.(*errdetails.BadRequest); ok {
					for _, v := range br.GetFieldViolations() {
						fields = append(fields, v.GetField())
					}
				}
			}
			if len(fields) != 1 || fields[0] != tc.field {
				t.Errorf("field violations %v, want [%s]", fields, tc.field)
			}
		})
	}

	addr := svc.AdminHTTPAddr()
	restCases := []struct{ name, method, path, body, field string }{
		{"list: unknown status number", "GET", "/v1/outbox/messages?status=42", "", "status"},
		{"get: id zero", "GET", "/v1/outbox/messages/shard-0/0", "", "id"},
		{"get: negative id", "GET", "/v1/outbox/messages/shard-0/-3", "", "id"},
		{"replay: unknown filter status number", "POST", "/v1/outbox/messages:replay", `{"filter":{"status":42},"reason":"x"}`, "filter.status"},
		{"replay: negative id", "POST", "/v1/outbox/messages:replay", `{"shard":"shard-0","ids":["-1"],"reason":"x"}`, "ids[0]"},
		{"replay: ids and a filter", "POST", "/v1/outbox/messages:replay", `{"shard":"shard-0","ids":["1"],"filter":{"status":"MESSAGE_STATUS_FAILED"},"reason":"x"}`, "filter"},
		{"replay: two shards", "POST", "/v1/outbox/messages:replay", `{"shard":"shard-1","filter":{"shard":"shard-0"},"reason":"x"}`, "filter.shard"},
		{"replay: since after until", "POST", "/v1/outbox/messages:replay",
			`{"filter":{"since":"2026-02-01T00:00:00Z","until":"2026-01-01T00:00:00Z"},"reason":"x"}`, "filter.until"},
	}
	for _, tc := range restCases {
		t.Run("REST "+tc.name, func(t *testing.T) {
			code, body := adminDo(t, addr, tc.method, tc.path, token, tc.body)
			if code != http.StatusBadRequest || body["code"] != float64(codes.InvalidArgument) ||
				!bytes.Contains(mustJSON(body), []byte(`"field":"`+tc.field+`"`)) {
				t.Errorf("HTTP %d %v, want 400 naming %s", code, body, tc.field)
			}
		})
	}

	for i, s := range topo.Shards {
		db := testinfra.DB(t, s.DSN)
		var failed, audits int
		if err := db.QueryRow("SELECT COUNT(*) FROM outbox WHERE status = 'FAILED'").Scan(&failed); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow("SELECT COUNT(*) FROM outbox_replay_audit").Scan(&audits); err != nil {
			t.Fatal(err)
		}
		if failed != failedPerShard || audits != 0 {
			t.Errorf("shard-%d after the refused requests: %d FAILED rows, %d audit rows; want %d and none", i, failed, audits, failedPerShard)
		}
	}
}
