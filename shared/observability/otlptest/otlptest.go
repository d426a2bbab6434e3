// Package otlptest is an in-process OTLP trace receiver for tests: it
// accepts exports over OTLP/HTTP (protobuf) and OTLP/gRPC, as a collector
// would, and keeps every span it received.
package otlptest

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Span is one received span, with its ids in hex as a traceparent writes
// them.
type Span struct {
	Service  string
	Name     string
	Kind     tracev1.Span_SpanKind
	TraceID  string
	SpanID   string
	ParentID string // "" for a root span
	// Attributes are the span's string and integer attributes, as text.
	Attributes map[string]string
	// Error is true when the span's status is an error.
	Error bool
	// Protocol is how the span arrived: "http" or "grpc".
	Protocol string
}

// Receiver collects the spans exported to it.
type Receiver struct {
	collectortrace.UnimplementedTraceServiceServer

	httpServer *httptest.Server
	grpcServer *grpc.Server
	grpcAddr   string

	mu    sync.Mutex
	spans []Span
}

// Start runs a receiver until the test ends.
func Start(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.serveHTTP)
	r.httpServer = httptest.NewServer(mux)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.grpcAddr = lis.Addr().String()
	r.grpcServer = grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(r.grpcServer, r)
	go func() { _ = r.grpcServer.Serve(lis) }()
	t.Cleanup(func() {
		r.grpcServer.Stop()
		r.httpServer.Close()
	})
	return r
}

// HTTPEndpoint is the value of OTEL_EXPORTER_OTLP_ENDPOINT for
// OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf.
func (r *Receiver) HTTPEndpoint() string { return r.httpServer.URL }

// GRPCEndpoint is the value of OTEL_EXPORTER_OTLP_ENDPOINT for
// OTEL_EXPORTER_OTLP_PROTOCOL=grpc (plain text).
func (r *Receiver) GRPCEndpoint() string { return "http://" + r.grpcAddr }

// Spans returns a copy of the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Export implements the OTLP/gRPC trace service.
func (r *Receiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.add(req, "grpc")
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		defer gz.Close()
		body = gz
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	export := &collectortrace.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(raw, export); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.add(export, "http")
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (r *Receiver) add(req *collectortrace.ExportTraceServiceRequest, protocol string) {
	var got []Span
	for _, rs := range req.GetResourceSpans() {
		service := attributes(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				got = append(got, Span{
					Service: service, Name: s.GetName(), Kind: s.GetKind(),
					TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					ParentID: hex.EncodeToString(s.GetParentSpanId()), Attributes: attributes(s.GetAttributes()),
					Error: s.GetStatus().GetCode() == tracev1.Status_STATUS_CODE_ERROR, Protocol: protocol,
				})
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	r.mu.Unlock()
}

func attributes(kvs []*commonv1.KeyValue) map[string]string {
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonv1.AnyValue_StringValue:
			out[kv.GetKey()] = v.StringValue
		case *commonv1.AnyValue_IntValue:
			out[kv.GetKey()] = fmt.Sprint(v.IntValue)
		case *commonv1.AnyValue_BoolValue:
			out[kv.GetKey()] = fmt.Sprint(v.BoolValue)
		}
	}
	return out
}
