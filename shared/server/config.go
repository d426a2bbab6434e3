package server

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Defaults of HTTPConfig, used for its zero fields (see WithDefaults). They
// are the envDefault tags' values, so that a Config built in code gets what
// the environment would give.
const (
	DefaultHTTPReadTimeout       = 10 * time.Second
	DefaultHTTPReadHeaderTimeout = 5 * time.Second
	DefaultHTTPWriteTimeout      = time.Minute
	DefaultHTTPIdleTimeout       = 2 * time.Minute
	DefaultHTTPMaxHeaderBytes    = 32 << 10
)

// HTTPConfig bounds the connections of a service's HTTP port, so that a
// client that sends slowly, or never finishes, cannot hold a connection and
// its goroutine for good. Services embed it with an envPrefix
// (ORDERFLOW_HTTP_READ_TIMEOUT, ...).
type HTTPConfig struct {
	// ReadTimeout bounds reading one request, headers and body: a client
	// that trickles its body more slowly is cut off.
	ReadTimeout time.Duration `env:"READ_TIMEOUT" envDefault:"10s"`
	// ReadHeaderTimeout bounds reading one request's headers.
	ReadHeaderTimeout time.Duration `env:"READ_HEADER_TIMEOUT" envDefault:"5s"`
	// WriteTimeout bounds a request from the end of its headers to the end
	// of its response. It must exceed the longest legitimate request (the
	// service's request timeout, a minVersion wait included), or such
	// responses are cut off.
	WriteTimeout time.Duration `env:"WRITE_TIMEOUT" envDefault:"1m"`
	// IdleTimeout closes a keep-alive connection idle this long.
	IdleTimeout time.Duration `env:"IDLE_TIMEOUT" envDefault:"2m"`
	// MaxHeaderBytes caps the request line and headers; larger ones are
	// answered 431.
	MaxHeaderBytes int `env:"MAX_HEADER_BYTES" envDefault:"32768"`
}

// WithDefaults fills the zero fields with their defaults.
func (c HTTPConfig) WithDefaults() HTTPConfig {
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultHTTPReadTimeout
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = DefaultHTTPReadHeaderTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultHTTPWriteTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultHTTPIdleTimeout
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultHTTPMaxHeaderBytes
	}
	return c
}

// Validate refuses negative values and a header timeout longer than the
// whole read's (zero fields stand for their defaults).
func (c HTTPConfig) Validate() error {
	c = c.WithDefaults()
	var errs []error
	if c.ReadTimeout < 0 || c.ReadHeaderTimeout < 0 || c.WriteTimeout < 0 || c.IdleTimeout < 0 {
		errs = append(errs, errors.New("READ_TIMEOUT, READ_HEADER_TIMEOUT, WRITE_TIMEOUT and IDLE_TIMEOUT must not be negative"))
	}
	if c.ReadHeaderTimeout > c.ReadTimeout {
		errs = append(errs, errors.New("READ_HEADER_TIMEOUT must not exceed READ_TIMEOUT"))
	}
	if c.MaxHeaderBytes < 4096 {
		errs = append(errs, errors.New("MAX_HEADER_BYTES must be at least 4096"))
	}
	return errors.Join(errs...)
}

// ValidateFor checks c and that its write timeout leaves room for the
// longest legitimate request, longest (the service's request timeout).
func (c HTTPConfig) ValidateFor(longest time.Duration) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if w := c.WithDefaults().WriteTimeout; w <= longest {
		return fmt.Errorf("WRITE_TIMEOUT (%s) must exceed the request timeout (%s), or the slowest answers are cut off", w, longest)
	}
	return nil
}

// Defaults of GRPCConfig, used for its zero fields (see WithDefaults).
const (
	DefaultGRPCMaxConcurrentStreams = 1000
	DefaultGRPCKeepaliveMinTime     = 10 * time.Second
	DefaultGRPCKeepaliveTime        = time.Minute
	DefaultGRPCKeepaliveTimeout     = 20 * time.Second
	DefaultGRPCMaxConnectionIdle    = 15 * time.Minute
)

// GRPCConfig bounds the connections of a service's gRPC port. Services
// embed it with an envPrefix (ORDERFLOW_GRPC_MAX_CONCURRENT_STREAMS, ...).
type GRPCConfig struct {
	// MaxConcurrentStreams caps the calls in flight on one gRPC connection;
	// further calls wait for one to end. REST requests do not count: the
	// gateway reaches the services through an in-process channel, not a
	// connection.
	MaxConcurrentStreams uint32 `env:"MAX_CONCURRENT_STREAMS" envDefault:"1000"`
	// KeepaliveMinTime is the shortest interval between a client's
	// keepalive pings the server accepts; a client pinging more often is
	// sent GOAWAY (ENHANCE_YOUR_CALM) and disconnected.
	KeepaliveMinTime time.Duration `env:"KEEPALIVE_MIN_TIME" envDefault:"10s"`
	// KeepalivePermitWithoutStream accepts keepalive pings on a connection
	// without calls in flight (false: such pings count as too frequent, as
	// gRPC's own default has it).
	KeepalivePermitWithoutStream bool `env:"KEEPALIVE_PERMIT_WITHOUT_STREAM" envDefault:"true"`
	// KeepaliveTime is how long a connection may be silent before the
	// server pings the client, and KeepaliveTimeout how long it then waits
	// for the answer before closing the connection: a client that vanished
	// without closing its connection frees it.
	KeepaliveTime    time.Duration `env:"KEEPALIVE_TIME" envDefault:"1m"`
	KeepaliveTimeout time.Duration `env:"KEEPALIVE_TIMEOUT" envDefault:"20s"`
	// MaxConnectionIdle closes a connection without calls for this long.
	MaxConnectionIdle time.Duration `env:"MAX_CONNECTION_IDLE" envDefault:"15m"`
}

// WithDefaults fills the zero fields with their defaults
// (KeepalivePermitWithoutStream has none: false is a setting).
func (c GRPCConfig) WithDefaults() GRPCConfig {
	if c.MaxConcurrentStreams == 0 {
		c.MaxConcurrentStreams = DefaultGRPCMaxConcurrentStreams
	}
	if c.KeepaliveMinTime == 0 {
		c.KeepaliveMinTime = DefaultGRPCKeepaliveMinTime
	}
	if c.KeepaliveTime == 0 {
		c.KeepaliveTime = DefaultGRPCKeepaliveTime
	}
	if c.KeepaliveTimeout == 0 {
		c.KeepaliveTimeout = DefaultGRPCKeepaliveTimeout
	}
	if c.MaxConnectionIdle == 0 {
		c.MaxConnectionIdle = DefaultGRPCMaxConnectionIdle
	}
	return c
}

// Validate refuses negative durations (zero fields stand for their
// defaults).
func (c GRPCConfig) Validate() error {
	if c.KeepaliveMinTime < 0 || c.KeepaliveTime < 0 || c.KeepaliveTimeout < 0 || c.MaxConnectionIdle < 0 {
		return errors.New("KEEPALIVE_MIN_TIME, KEEPALIVE_TIME, KEEPALIVE_TIMEOUT and MAX_CONNECTION_IDLE must not be negative")
	}
	return nil
}

// serverOptions are the gRPC server options that apply c.
func (c GRPCConfig) serverOptions() []grpc.ServerOption {
	c = c.WithDefaults()
	return []grpc.ServerOption{
		grpc.MaxConcurrentStreams(c.MaxConcurrentStreams),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime: c.KeepaliveMinTime, PermitWithoutStream: c.KeepalivePermitWithoutStream,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time: c.KeepaliveTime, Timeout: c.KeepaliveTimeout, MaxConnectionIdle: c.MaxConnectionIdle,
		}),
	}
}
