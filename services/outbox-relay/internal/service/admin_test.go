package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	outboxv1 "github.com/orderflow/orderflow/shared/gen/orderflow/outbox/v1"
	"github.com/orderflow/orderflow/shared/testinfra"
)

func adminDo(t *testing.T, addr, method, path, tok, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+addr+path, bytes.NewBufferString(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: not JSON: %s", method, path, raw)
	}
	return resp.StatusCode, out
}

func TestAdminAPI(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 2)
	topic := testinfra.KafkaTopic(t, 1)
	future := time.Now().UTC().Add(24 * time.Hour)
	// Per shard: 5 FAILED, 3 PUBLISHED, 2 PENDING not due yet (the relay leaves them alone).
	for i, s := range topo.Shards {
		db := testinfra.DB(t, s.DSN)
		for j := range 10 {
			status, next, attempts := "FAILED", any(nil), 10
			switch {
			case j >= 8:
				status, next, attempts = "PENDING", future, 1
			case j >= 5:
				status, attempts = "PUBLISHED", 0
			}
			typ := "OrderPlaced"
			if j%2 == 1 {
				typ = "OrderCancelled"
			}
			if _, err := db.Exec(`INSERT INTO outbox (event_id, event_type, order_no, order_version, occurred_at, status, attempts, last_error, next_attempt_at)
				VALUES (?, ?, ?, 1, ?, ?, ?, IF(? = 'FAILED', 'broker said no', NULL), ?)`,
				uuid.NewString(), typ, i*1000+j+1, time.Now().UTC().Add(-time.Duration(10-j)*time.Minute), status, attempts, status, next); err != nil {
				t.Fatal(err)
			}
		}
	}
	svc := startRelay(t, testConfig(topic, testinfra.KafkaBrokers()), topo)
	addr := svc.AdminHTTPAddr()

	t.Run("REST without the token is 401", func(t *testing.T) {
		for _, tok := range []string{"", "wrong"} {
			code, body := adminDo(t, addr, "GET", "/v1/outbox/stats", tok, "")
			if code != http.StatusUnauthorized || body["code"] != float64(16) {
				t.Errorf("token %q: HTTP %d %v", tok, code, body)
			}
		}
		if code, _ := adminDo(t, addr, "GET", "/healthz", "", ""); code != http.StatusOK {
			t.Errorf("/healthz needs no token, got %d", code)
		}
	})

	t.Run("gRPC without the token is UNAUTHENTICATED", func(t *testing.T) {
		conn, err := grpc.NewClient(svc.AdminGRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		client := outboxv1.NewOutboxAdminServiceClient(conn)
		if _, err := client.GetOutboxStats(context.Background(), &outboxv1.GetOutboxStatsRequest{}); status.Code(err) != codes.Unauthenticated {
			t.Errorf("no token: %v", err)
		}
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
		resp, err := client.GetOutboxStats(ctx, &outboxv1.GetOutboxStatsRequest{})
		if err != nil || len(resp.GetShards()) != 2 {
			t.Errorf("with token: %v %v", resp, err)
		}
	})

	t.Run("stats count every status and name the owner", func(t *testing.T) {
		testinfra.Eventually(t, 10*time.Second, func() bool {
			_, body := adminDo(t, addr, "GET", "/v1/outbox/stats", token, "")
			shards, _ := body["shards"].([]any)
			owned := 0
			for _, s := range shards {
				m := s.(map[string]any)
				if m["owner"] == "relay-test" {
					owned++
				}
			}
			return owned == 2
		}, "the relay does not own both shards")
		_, body := adminDo(t, addr, "GET", "/v1/outbox/stats", token, "")
		for _, s := range body["shards"].([]any) {
			m := s.(map[string]any)
			if m["pending"] != "2" || m["published"] != "3" || m["failed"] != "5" || m["oldestPendingAgeSeconds"].(float64) < 60 {
				t.Errorf("stats %v, want 2 pending (over a minute old), 3 published, 5 failed", m)
			}
		}
	})

	t.Run("backlog gauges count waiting and failed rows", func(t *testing.T) {
		testinfra.Eventually(t, 10*time.Second, func() bool {
			return testinfra.MetricSum(t, addr, "orderflow_outbox_pending{") == 4 &&
				testinfra.MetricSum(t, addr, "orderflow_outbox_failed{") == 10 &&
				testinfra.MetricSum(t, addr, "orderflow_outbox_oldest_pending_age_seconds{") >= 2*60
		}, "the backlog gauges do not show 2 pending and 5 failed rows per shard")
	})

	t.Run("list filters and pages across shards", func(t *testing.T) {
		var ids []string
		token2 := ""
		for page := 0; ; page++ {
			path := "/v1/outbox/messages?status=MESSAGE_STATUS_FAILED&pageSize=3"
			if token2 != "" {
				path += "&pageToken=" + token2
			}
			code, body := adminDo(t, addr, "GET", path, token, "")
			if code != 200 {
				t.Fatalf("page %d: HTTP %d %v", page, code, body)
			}
			for _, m := range body["messages"].([]any) {
				mm := m.(map[string]any)
				if mm["status"] != "MESSAGE_STATUS_FAILED" || mm["lastError"] != "broker said no" {
					t.Errorf("listed %v", mm)
				}
				ids = append(ids, fmt.Sprint(mm["shard"], "/", mm["id"]))
			}
			token2, _ = body["nextPageToken"].(string)
			if token2 == "" {
				break
			}
		}
		sorted := slices.Clone(ids)
		slices.Sort(sorted)
		if len(ids) != 10 || len(slices.Compact(sorted)) != 10 {
			t.Errorf("paged through %d FAILED rows (%v), want 10 distinct", len(ids), ids)
		}
		code, body := adminDo(t, addr, "GET", "/v1/outbox/messages?shard=shard-1&eventType=OrderCancelled&status=MESSAGE_STATUS_FAILED", token, "")
		if msgs, _ := body["messages"].([]any); code != 200 || len(msgs) != 2 {
			t.Errorf("shard-1 FAILED OrderCancelled: HTTP %d, %d rows (%v), want 2", code, len(msgs), body)
		}
	})

	t.Run("bad requests are 400 with the field", func(t *testing.T) {
		tests := []struct{ method, path, body, field string }{
			{"GET", "/v1/outbox/messages?shard=nope", "", "shard"},
			{"GET", "/v1/outbox/messages?eventType=OrderEaten", "", "eventType"},
			{"GET", "/v1/outbox/messages?pageSize=5000", "", "pageSize"},
			{"GET", "/v1/outbox/messages?pageToken=garbage", "", "pageToken"},
			{"GET", "/v1/outbox/messages?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "", "until"},
			{"POST", "/v1/outbox/messages:replay", `{"shard":"shard-0","ids":["1"]}`, "reason"},
			{"POST", "/v1/outbox/messages:replay", `{"ids":["1"],"reason":"x"}`, "shard"},
			{"POST", "/v1/outbox/messages:replay", `{"filter":{"status":"MESSAGE_STATUS_PENDING"},"reason":"x"}`, "filter.status"},
			{"POST", "/v1/outbox/messages:replay", `{"reason":"x","bogus":1}`, "bogus"},
		}
		for _, tc := range tests {
			code, body := adminDo(t, addr, tc.method, tc.path, token, tc.body)
			if code != 400 || !bytes.Contains(mustJSON(body), []byte(`"field":"`+tc.field+`"`)) {
				t.Errorf("%s %s %s: HTTP %d %v, want 400 naming %s", tc.method, tc.path, tc.body, code, body, tc.field)
			}
		}
		if code, _ := adminDo(t, addr, "GET", "/v1/outbox/messages/shard-0/999999", token, ""); code != 404 {
			t.Errorf("unknown message: HTTP %d, want 404", code)
		}
	})

	t.Run("replay by id resets the row and is audited", func(t *testing.T) {
		_, body := adminDo(t, addr, "GET", "/v1/outbox/messages?shard=shard-0&status=MESSAGE_STATUS_FAILED&pageSize=1", token, "")
		first := body["messages"].([]any)[0].(map[string]any)
		id := first["id"].(string)
		code, dry := adminDo(t, addr, "POST", "/v1/outbox/messages:replay", token,
			`{"shard":"shard-0","ids":["`+id+`"],"dryRun":true,"reason":"check"}`)
		if code != 200 || dry["total"] != "1" || dry["dryRun"] != true {
			t.Fatalf("dry run: HTTP %d %v", code, dry)
		}
		_, got := adminDo(t, addr, "GET", "/v1/outbox/messages/shard-0/"+id, token, "")
		if got["message"].(map[string]any)["status"] != "MESSAGE_STATUS_FAILED" {
			t.Fatalf("a dry run changed the row: %v", got)
		}
		code, res := adminDo(t, addr, "POST", "/v1/outbox/messages:replay", token,
			`{"shard":"shard-0","ids":["`+id+`"],"reason":"topic fixed","actor":"alice"}`)
		if code != 200 || res["total"] != "1" {
			t.Fatalf("replay: HTTP %d %v", code, res)
		}
		testinfra.Eventually(t, 20*time.Second, func() bool {
			_, got := adminDo(t, addr, "GET", "/v1/outbox/messages/shard-0/"+id, token, "")
			m := got["message"].(map[string]any)
			return m["status"] == "MESSAGE_STATUS_PUBLISHED" && m["attempts"] == float64(0)
		}, "the replayed row was not published")
		var actor, reason string
		var rows int
		if err := testinfra.DB(t, topo.Shards[0].DSN).QueryRow("SELECT actor, reason, row_count FROM outbox_replay_audit").Scan(&actor, &reason, &rows); err != nil ||
			actor != "alice" || reason != "topic fixed" || rows != 1 {
			t.Errorf("audit: %q %q %d (%v)", actor, reason, rows, err)
		}
	})

	t.Run("replays are counted per shard as they commit, dry runs not", func(t *testing.T) {
		replayed := func(shard string) float64 {
			return testinfra.MetricSum(t, addr, `orderflow_outbox_replayed_rows_total{shard="`+shard+`"}`)
		}
		if a, b := replayed("shard-0"), replayed("shard-1"); a != 1 || b != 0 {
			t.Fatalf("after one replay by id and dry runs: shard-0 %v, shard-1 %v rows replayed, want 1 and 0", a, b)
		}
		code, res := adminDo(t, addr, "POST", "/v1/outbox/messages:replay", token,
			`{"filter":{"status":"MESSAGE_STATUS_FAILED"},"reason":"topic fixed"}`)
		per, _ := res["replayed"].(map[string]any)
		if code != 200 || res["total"] != "9" || per["shard-0"] == nil || per["shard-1"] == nil {
			t.Fatalf("replay by filter: HTTP %d %v, want the 9 FAILED rows left on both shards", code, res)
		}
		want0, _ := strconv.ParseFloat(per["shard-0"].(string), 64)
		want1, _ := strconv.ParseFloat(per["shard-1"].(string), 64)
		if a, b := replayed("shard-0"), replayed("shard-1"); a != 1+want0 || b != want1 {
			t.Errorf("after the replay by filter: shard-0 %v, shard-1 %v rows replayed, want %v and %v", a, b, 1+want0, want1)
		}
	})
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
