package orderapi

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func TestAddrs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, list string
		want       []string
	}{
		{name: "one", list: "127.0.0.1:9090", want: []string{"127.0.0.1:9090"}},
		{name: "several, spaces and empty items dropped", list: " a:1, ,b:2,", want: []string{"a:1", "b:2"}},
		{name: "empty", list: "", want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Addrs(tc.list)
			if len(got) != len(tc.want) {
				t.Fatalf("Addrs(%q) = %q, want %q", tc.list, got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("Addrs(%q) = %q, want %q", tc.list, got, tc.want)
				}
			}
		})
	}
}

func TestRotationTakesEachURLInTurn(t *testing.T) {
	t.Parallel()
	r := newRotation("http://a,http://b")
	var got []string
	for range 4 {
		got = append(got, r.url())
	}
	want := []string{"http://a", "http://b", "http://a", "http://b"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("urls = %q, want %q", got, want)
		}
	}
}

// countingServer is a gRPC server answering health checks and counting
// them.
func countingServer(t *testing.T) (string, *atomic.Int64, func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		calls.Add(1)
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(l) }()
	return l.Addr().String(), &calls, srv.Stop
}

func TestDialSpreadUsesEveryInstanceAndSkipsAStoppedOne(t *testing.T) {
	t.Parallel()
	a, callsA, stopA := countingServer(t)
	b, callsB, stopB := countingServer(t)
	defer stopB()
	cc, err := DialSpread(a+","+b, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := healthpb.NewHealthClient(cc)
	check := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
		return err
	}
	// The balancer picks among the connected instances: until the second
	// connection is up, the first takes every call.
	for deadline := time.Now().Add(5 * time.Second); (callsA.Load() == 0 || callsB.Load() == 0) && time.Now().Before(deadline); {
		if err := check(); err != nil {
			t.Fatal(err)
		}
	}
	if callsA.Load() == 0 || callsB.Load() == 0 {
		t.Fatalf("calls a=%d b=%d, want both instances used", callsA.Load(), callsB.Load())
	}
	// One instance gone: after the calls in flight, every call reaches the
	// other one.
	stopA()
	failed := 0
	for range 20 {
		if err := check(); err != nil {
			failed++
		}
	}
	before := callsB.Load()
	for range 10 {
		if err := check(); err != nil {
			t.Fatalf("with b alone up: %v", err)
		}
	}
	if got := callsB.Load() - before; got != 10 {
		t.Fatalf("b took %d of 10 calls after a stopped", got)
	}
	if failed > 1 {
		t.Errorf("%d of 20 calls failed right after a stopped, want at most the one in flight", failed)
	}
}
