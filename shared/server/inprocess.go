package server

import (
	"context"
	"fmt"
	"math"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
)

// inProcessNetwork is the network name of the in-process connection's
// addresses, which tells a call from the gateway from one over TCP.
const inProcessNetwork = "bufconn"

// inProcessBuffer is the size of each direction's buffer of one in-process
// connection: a few of the largest REST bodies.
const inProcessBuffer = 1 << 20

// InProcess is the connection the REST gateway calls the gRPC server of
// its own process through, so that a REST request runs the same interceptor
// chain as a gRPC call. It is an in-memory pipe (grpc's bufconn): no port,
// no TCP stack, no kernel round trip; HTTP/2 framing and protobuf coding
// are all it adds to a REST request.
type InProcess struct {
	lis  *bufconn.Listener
	conn *grpc.ClientConn
}

// NewInProcess returns the connection; Listen serves the gRPC server on it
// (see Addrs.InProcess). Calls made before the server serves wait for it.
func NewInProcess() (*InProcess, error) {
	lis := bufconn.Listen(inProcessBuffer)
	conn, err := grpc.NewClient("passthrough:///in-process",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// The server's own limit applies to requests; a response is as large
		// as the server made it.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.MaxCallSendMsgSize(math.MaxInt32)),
	)
	if err != nil {
		_ = lis.Close()
		return nil, fmt.Errorf("opening the in-process gRPC connection: %w", err)
	}
	return &InProcess{lis: lis, conn: conn}, nil
}

// Conn is the client side, for the gateway's Register...Handler functions.
func (p *InProcess) Conn() *grpc.ClientConn { return p.conn }

// Close closes the client side and the listener.
func (p *InProcess) Close() error {
	err := p.conn.Close()
	_ = p.lis.Close()
	return err
}
