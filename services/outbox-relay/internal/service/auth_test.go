package service_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/orderflow/orderflow/services/outbox-relay/internal/service"
	"github.com/orderflow/orderflow/shared/auth"
	outboxv1 "github.com/orderflow/orderflow/shared/gen/orderflow/outbox/v1"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// adminKeys makes signing keys for a relay test and returns the settings
// that verify them and a function that signs tokens.
func adminKeys(t *testing.T) (auth.Settings, func(auth.TokenRequest) string) {
	t.Helper()
	dir := t.TempDir()
	if _, err := auth.GenerateKeys(dir, 1); err != nil {
		t.Fatal(err)
	}
	issuer, err := auth.NewIssuer(auth.IssuerConfig{KeyFile: filepath.Join(dir, auth.SigningKeyFile), Issuer: auth.LocalIssuer, Audience: auth.DefaultAudience})
	if err != nil {
		t.Fatal(err)
	}
	settings := auth.Settings{JWKSFile: filepath.Join(dir, auth.PublicKeysFile), Issuer: auth.LocalIssuer, Audience: auth.DefaultAudience, Leeway: 30 * time.Second}
	return settings, func(r auth.TokenRequest) string {
		r.TTL = time.Hour
		tok, err := issuer.Issue(r)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
}

// The admin token or an operator's JWT passes every RPC, streams included;
// a user's or a shop's JWT is PERMISSION_DENIED; no token or a bad one
// UNAUTHENTICATED. Reflection, which describes the whole admin API, is
// guarded like the rest; health checks, which probes make without a
// token, are not.
func TestAdminTokenGuardsStreamsAndReflection(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 1)
	cfg := testConfig(testinfra.KafkaTopic(t, 1), testinfra.KafkaBrokers())
	settings, sign := adminKeys(t)
	cfg.Auth = settings
	svc := startRelay(t, cfg, topo)
	operator := sign(auth.TokenRequest{Role: auth.RoleOperator})
	user := sign(auth.TokenRequest{Role: auth.RoleUser, User: "u-1"})
	shop := sign(auth.TokenRequest{Role: auth.RoleShop, Shop: "s-1"})
	conn, err := grpc.NewClient(svc.AdminGRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	listServices := func(ctx context.Context) error {
		stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
		if err != nil {
			return err
		}
		// A stream the server refused at once may already be closed when
		// the request goes out: Send then says io.EOF, and Recv has the
		// status.
		if err := stream.Send(&reflectionpb.ServerReflectionRequest{
			MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: "*"},
		}); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		for _, s := range resp.GetListServicesResponse().GetService() {
			if s.GetName() == outboxv1.OutboxAdminService_ServiceDesc.ServiceName {
				return nil
			}
		}
		t.Errorf("reflection lists %v, not the admin service", resp.GetListServicesResponse().GetService())
		return nil
	}
	withToken := func(tok string) context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
	}
	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{name: "reflection without a token", call: func() error { return listServices(context.Background()) }, want: codes.Unauthenticated},
		{name: "reflection with a wrong token", call: func() error { return listServices(withToken(token + "x")) }, want: codes.Unauthenticated},
		{name: "reflection with the token", call: func() error { return listServices(withToken(token)) }, want: codes.OK},
		{name: "reflection with an operator's JWT", call: func() error { return listServices(withToken(operator)) }, want: codes.OK},
		{name: "reflection with a user's JWT", call: func() error { return listServices(withToken(user)) }, want: codes.PermissionDenied},
		{name: "unary call without a token", call: func() error {
			_, err := outboxv1.NewOutboxAdminServiceClient(conn).GetOutboxStats(context.Background(), &outboxv1.GetOutboxStatsRequest{})
			return err
		}, want: codes.Unauthenticated},
		{name: "unary call with the token", call: func() error {
			_, err := outboxv1.NewOutboxAdminServiceClient(conn).GetOutboxStats(withToken(token), &outboxv1.GetOutboxStatsRequest{})
			return err
		}, want: codes.OK},
		{name: "unary call with an operator's JWT", call: func() error {
			_, err := outboxv1.NewOutboxAdminServiceClient(conn).GetOutboxStats(withToken(operator), &outboxv1.GetOutboxStatsRequest{})
			return err
		}, want: codes.OK},
		{name: "unary call with a user's JWT", call: func() error {
			_, err := outboxv1.NewOutboxAdminServiceClient(conn).GetOutboxStats(withToken(user), &outboxv1.GetOutboxStatsRequest{})
			return err
		}, want: codes.PermissionDenied},
		{name: "replay with a shop's JWT", call: func() error {
			_, err := outboxv1.NewOutboxAdminServiceClient(conn).ReplayOutboxMessages(withToken(shop),
				&outboxv1.ReplayOutboxMessagesRequest{Shard: topo.Shards[0].Name, Ids: []int64{1}})
			return err
		}, want: codes.PermissionDenied},
		{name: "unary call with a wrong token", call: func() error {
			_, err := outboxv1.NewOutboxAdminServiceClient(conn).GetOutboxStats(withToken(token+"x"), &outboxv1.GetOutboxStatsRequest{})
			return err
		}, want: codes.Unauthenticated},
		{name: "health check without a token", call: func() error {
			_, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
			return err
		}, want: codes.OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := status.Code(tc.call()); got != tc.want {
				t.Errorf("code %s, want %s", got, tc.want)
			}
		})
	}

	// REST runs the same chain.
	rest := []struct {
		name, token string
		want        int
	}{
		{name: "no token", want: http.StatusUnauthorized},
		{name: "admin token", token: token, want: http.StatusOK},
		{name: "operator's JWT", token: operator, want: http.StatusOK},
		{name: "user's JWT", token: user, want: http.StatusForbidden},
		{name: "shop's JWT", token: shop, want: http.StatusForbidden},
		{name: "wrong token", token: token + "x", want: http.StatusUnauthorized},
	}
	for _, tc := range rest {
		code, body := adminDo(t, svc.AdminHTTPAddr(), http.MethodGet, "/v1/outbox/stats", tc.token, "")
		if code != tc.want || (code != http.StatusOK && body["code"] == nil) {
			t.Errorf("REST with %s: HTTP %d %v, want %d", tc.name, code, body, tc.want)
		}
	}
}

// With authentication off the admin token still guards the admin API, and
// a JWT, which nothing verifies, does not pass.
func TestAdminTokenOnlyWithAuthOff(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 1)
	cfg := testConfig(testinfra.KafkaTopic(t, 1), testinfra.KafkaBrokers())
	_, sign := adminKeys(t)
	cfg.Auth = auth.Settings{Disabled: true}
	svc := startRelay(t, cfg, topo)
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{name: "admin token", token: token, want: http.StatusOK},
		{name: "operator's JWT", token: sign(auth.TokenRequest{Role: auth.RoleOperator}), want: http.StatusUnauthorized},
		{name: "no token", want: http.StatusUnauthorized},
	} {
		if code, body := adminDo(t, svc.AdminHTTPAddr(), http.MethodGet, "/v1/outbox/stats", tc.token, ""); code != tc.want {
			t.Errorf("%s: HTTP %d %v, want %d", tc.name, code, body, tc.want)
		}
	}
}

// Without a JWK Set and without the off switch the relay does not start.
func TestRelayAuthOnByDefault(t *testing.T) {
	t.Parallel()
	cfg := testConfig(testinfra.KafkaTopic(t, 1), testinfra.KafkaBrokers())
	cfg.Auth.Disabled = false
	_, err := service.New(t.Context(), cfg, testinfra.Shards(t, 1), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "ORDERFLOW_AUTH_DISABLED") {
		t.Errorf("New without a JWK Set = %v, want a refusal naming ORDERFLOW_AUTH_DISABLED", err)
	}
}
