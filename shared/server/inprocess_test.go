package server_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/orderflow/orderflow/shared/observability"
	"github.com/orderflow/orderflow/shared/server"
)

// BenchmarkGatewayConnection compares what one unary call through the whole
// chain costs over the in-process channel the gateway uses and over
// loopback TCP to the server's own port (the alternative it was chosen
// over): go test -run '^$' -bench GatewayConnection ./server/
func BenchmarkGatewayConnection(b *testing.B) {
	registry := observability.NewRegistry()
	tracing, err := observability.NewTracing(context.Background(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	inProcess := server.NewInProcess()
	grpcServer, err := server.NewGRPCServer(server.GRPCOptions{InProcess: inProcess, Logger: slog.New(slog.DiscardHandler), Registry: registry,
		Tracing: tracing, Deadlines: server.Deadlines{Default: 5 * time.Second}})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := server.Listen(slog.New(slog.DiscardHandler), server.Addrs{GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0"},
		grpcServer, nil, server.HTTPConfig{}, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	tcp, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tcp.Close() })
	for _, tc := range []struct {
		name string
		conn grpc.ClientConnInterface
	}{
		{name: "in-process", conn: inProcess.Conn()},
		{name: "loopback-tcp", conn: tcp},
	} {
		b.Run(tc.name, func(b *testing.B) {
			client := healthpb.NewHealthClient(tc.conn)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
