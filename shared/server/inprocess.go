package server

import (
	"context"

	"github.com/fullstorydev/grpchan/inprocgrpc"
	"google.golang.org/grpc"
)

// inProcessNetwork is the network name of the in-process channel's peer
// (inprocgrpc's), which tells a call from the gateway from one over TCP.
const inProcessNetwork = "inproc"

// InProcess is the channel the REST gateway calls the gRPC services of its
// own process through, so that a REST request runs the same chain as a gRPC
// call: the interceptors and the tracing stats handler NewGRPCServer builds
// (GRPCOptions.InProcess) run on it too. It is grpchan's in-process channel:
// a call is a function call with a copy of the request and response
// messages, no HTTP/2 framing and no protobuf coding, which cost the REST
// path several points of its throughput over an in-memory HTTP/2
// connection (docs/performance.md).
type InProcess struct {
	ch *inprocgrpc.Channel
}

// NewInProcess returns the channel; NewGRPCServer gives it the chain, and
// Registrar registers each service on it and on the gRPC server.
func NewInProcess() *InProcess {
	return &InProcess{ch: &inprocgrpc.Channel{}}
}

// Conn is the client side, for the gateway's Register...HandlerClient
// functions (over the service's New...Client).
func (p *InProcess) Conn() grpc.ClientConnInterface { return p.ch }

// Registrar registers a service on the gRPC server and on the in-process
// channel (when there is one), for the generated Register...Server
// functions: both protocols then reach the same implementation.
func Registrar(s *grpc.Server, p *InProcess) grpc.ServiceRegistrar {
	return registrar{server: s, inProcess: p}
}

type registrar struct {
	server    *grpc.Server
	inProcess *InProcess
}

func (r registrar) RegisterService(desc *grpc.ServiceDesc, impl any) {
	r.server.RegisterService(desc, impl)
	if r.inProcess != nil {
		r.inProcess.ch.RegisterService(desc, impl)
	}
}

// chainUnary composes interceptors into one, the first outermost, as
// grpc.ChainUnaryInterceptor does on a server (the channel takes one).
func chainUnary(interceptors []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		next := handler
		for i := len(interceptors) - 1; i >= 0; i-- {
			interceptor, inner := interceptors[i], next
			next = func(ctx context.Context, req any) (any, error) { return interceptor(ctx, req, info, inner) }
		}
		return next(ctx, req)
	}
}

// chainStream is chainUnary for streaming calls.
func chainStream(interceptors []grpc.StreamServerInterceptor) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		next := handler
		for i := len(interceptors) - 1; i >= 0; i-- {
			interceptor, inner := interceptors[i], next
			next = func(srv any, ss grpc.ServerStream) error { return interceptor(srv, ss, info, inner) }
		}
		return next(srv, ss)
	}
}
