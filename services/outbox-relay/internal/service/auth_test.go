package service_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	outboxv1 "github.com/orderflow/orderflow/shared/gen/orderflow/outbox/v1"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// The admin token guards every RPC, streams included: reflection, which
// describes the whole admin API, is refused without it; health checks,
// which probes make without a token, are not.
func TestAdminTokenGuardsStreamsAndReflection(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 1)
	svc := startRelay(t, testConfig(testinfra.KafkaTopic(t, 1), testinfra.KafkaBrokers()), topo)
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
		{name: "unary call without a token", call: func() error {
			_, err := outboxv1.NewOutboxAdminServiceClient(conn).GetOutboxStats(context.Background(), &outboxv1.GetOutboxStatsRequest{})
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
}
