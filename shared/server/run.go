package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc"
)

// Addrs says where a service listens.
type Addrs struct {
	// GRPC is the gRPC listen address; empty for a service without gRPC.
	GRPC string
	// HTTP is the REST/operations listen address.
	HTTP string
}

// Server owns the listeners of one process.
type Server struct {
	logger          *slog.Logger
	grpcServer      *grpc.Server
	httpServer      *http.Server
	grpcLis         net.Listener
	httpLis         net.Listener
	shutdownTimeout time.Duration
}

// Listen binds the ports now (so that a port already in use fails start-up,
// and tests can listen on :0 and read the chosen address) without serving.
// httpCfg bounds the HTTP port's connections (zero fields: the defaults).
func Listen(logger *slog.Logger, addrs Addrs, grpcServer *grpc.Server, handler http.Handler, httpCfg HTTPConfig, shutdownTimeout time.Duration) (*Server, error) {
	s := &Server{logger: logger, grpcServer: grpcServer, shutdownTimeout: shutdownTimeout}
	if err := httpCfg.Validate(); err != nil {
		return nil, fmt.Errorf("HTTP settings: %w", err)
	}
	httpCfg = httpCfg.WithDefaults()
	var err error
	if grpcServer != nil {
		if s.grpcLis, err = net.Listen("tcp", addrs.GRPC); err != nil {
			return nil, fmt.Errorf("listening for gRPC on %s: %w", addrs.GRPC, err)
		}
	}
	if s.httpLis, err = net.Listen("tcp", addrs.HTTP); err != nil {
		if s.grpcLis != nil {
			_ = s.grpcLis.Close()
		}
		return nil, fmt.Errorf("listening for HTTP on %s: %w", addrs.HTTP, err)
	}
	s.httpServer = &http.Server{
		Handler:           handler,
		ReadTimeout:       httpCfg.ReadTimeout,
		ReadHeaderTimeout: httpCfg.ReadHeaderTimeout,
		WriteTimeout:      httpCfg.WriteTimeout,
		IdleTimeout:       httpCfg.IdleTimeout,
		MaxHeaderBytes:    httpCfg.MaxHeaderBytes,
	}
	return s, nil
}

// GRPCAddr is the bound gRPC address.
func (s *Server) GRPCAddr() string {
	if s.grpcLis == nil {
		return ""
	}
	return s.grpcLis.Addr().String()
}

// HTTPAddr is the bound HTTP address.
func (s *Server) HTTPAddr() string { return s.httpLis.Addr().String() }

// Run serves until ctx ends, then stops accepting, lets in-flight requests
// finish within the shutdown timeout, and returns.
func (s *Server) Run(ctx context.Context) error {
	errs := make(chan error, 3)
	if s.grpcServer != nil {
		go func() { errs <- s.grpcServer.Serve(s.grpcLis) }()
	}
	go func() {
		if err := s.httpServer.Serve(s.httpLis); !errors.Is(err, http.ErrServerClosed) {
			errs <- err
			return
		}
		errs <- nil
	}()
	s.logger.InfoContext(ctx, "serving", slog.String("grpc", s.GRPCAddr()), slog.String("http", s.HTTPAddr()))

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errs:
	}

	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.shutdownTimeout)
	defer cancel()
	s.logger.InfoContext(ctx, "shutting down", slog.Duration("timeout", s.shutdownTimeout))
	// HTTP first: the REST requests in flight still run the services'
	// chain, whose gRPC server GracefulStop would not wait for.
	httpErr := s.httpServer.Shutdown(shutdownCtx)
	if s.grpcServer != nil {
		stopped := make(chan struct{})
		go func() {
			s.grpcServer.GracefulStop()
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-shutdownCtx.Done():
			s.grpcServer.Stop()
		}
	}
	if serveErr != nil {
		return fmt.Errorf("serving: %w", serveErr)
	}
	if httpErr != nil {
		return fmt.Errorf("stopping HTTP: %w", httpErr)
	}
	return nil
}
