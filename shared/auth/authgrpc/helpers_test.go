package authgrpc_test

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

const (
	testIssuer   = "https://auth.orderflow.test"
	testAudience = "orderflow-api"
)

// testNow is the clock of every token and verifier here: fixed, so expiry
// is exact.
var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return testNow }

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func listen(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return lis
}
