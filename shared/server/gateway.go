package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/orderflow/orderflow/shared/validation"
)

// NewGateway returns a grpc-gateway mux that speaks protojson with
// lowerCamelCase names, emits unpopulated fields (clients see "stale":false
// and empty page tokens), refuses unknown JSON fields, and reports request
// decoding errors as INVALID_ARGUMENT with field violations. Its handlers
// are registered with the Register...Handler functions on an InProcess
// connection, so every REST request runs the gRPC server's chain.
func NewGateway(opts ...runtime.ServeMuxOption) *runtime.ServeMux {
	marshaler := &runtime.HTTPBodyMarshaler{Marshaler: &runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}}
	base := []runtime.ServeMuxOption{
		runtime.WithMarshalerOption(runtime.MIMEWildcard, marshaler),
		runtime.WithErrorHandler(errorHandler),
		runtime.WithIncomingHeaderMatcher(incomingHeader),
		runtime.WithOutgoingHeaderMatcher(outgoingHeader),
		runtime.WithMiddlewares(recordRouteMiddleware),
	}
	return runtime.NewServeMux(append(base, opts...)...)
}

// incomingHeader forwards the W3C trace context headers as they are, so the
// gRPC server's span continues the REST caller's trace, besides what the
// gateway forwards by default (Authorization as "authorization", the
// permanent HTTP headers with a "grpcgateway-" prefix).
func incomingHeader(key string) (string, bool) {
	switch k := strings.ToLower(key); k {
	case "traceparent", "tracestate", "baggage":
		return k, true
	}
	return runtime.DefaultHeaderMatcher(key)
}

// outgoingHeader turns the response metadata that are HTTP headers by
// meaning (retry-after, www-authenticate) into those headers; the rest keep
// the gateway's "Grpc-Metadata-" prefix.
func outgoingHeader(key string) (string, bool) {
	switch key {
	case "retry-after":
		return RetryAfterHeader, true
	case "www-authenticate":
		return "WWW-Authenticate", true
	}
	return runtime.MetadataHeaderPrefix + key, true
}

// recordRouteMiddleware hands the matched route to the REST request's span
// (see NewHTTPHandler), which started before any route was matched.
func recordRouteMiddleware(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if p, ok := runtime.HTTPPattern(r.Context()); ok {
			recordRoute(r, p.String())
		}
		next(w, r, params)
	}
}

var (
	unknownFieldRE  = regexp.MustCompile(`unknown field "([^"]+)"`)
	invalidValueRE  = regexp.MustCompile(`invalid value for [a-z0-9 ]*field ([a-zA-Z0-9_]+): (.*)`)
	pathParameterRE = regexp.MustCompile(`parameter: ([a-zA-Z0-9_.]+), error: (.*)`)
	queryFieldRE    = regexp.MustCompile(`parsing field "([a-zA-Z0-9_.]+)": (.*)`)
)

// errorHandler gives the gateway's own decoding errors (which arrive as a
// bare INVALID_ARGUMENT with the decoder's text) a BadRequest field
// violation, turns a google.rpc.RetryInfo detail into a Retry-After header
// (whole seconds), then writes the status as JSON like every other error.
func errorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if d, ok := RetryAfter(err); ok {
		w.Header().Set(RetryAfterHeader, strconv.FormatInt(retryAfterSeconds(d), 10))
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, describeDecodeError(err))
}

func describeDecodeError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return InvalidArgument("request body too large", []validation.FieldViolation{{
			Field: "body", Description: fmt.Sprintf("must be at most %d bytes", tooLarge.Limit),
		}})
	}
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.InvalidArgument || len(st.Details()) > 0 {
		return err
	}
	msg := st.Message()
	switch {
	case strings.Contains(msg, "request body too large"):
		return InvalidArgument("request body too large", []validation.FieldViolation{{Field: "body", Description: msg}})
	case unknownFieldRE.MatchString(msg):
		name := unknownFieldRE.FindStringSubmatch(msg)[1]
		return InvalidArgument("unknown field "+name, []validation.FieldViolation{{Field: name, Description: "unknown field"}})
	case invalidValueRE.MatchString(msg):
		m := invalidValueRE.FindStringSubmatch(msg)
		field := lowerCamel(m[1])
		return InvalidArgument("invalid "+field, []validation.FieldViolation{{Field: field, Description: "invalid value: " + m[2]}})
	case queryFieldRE.MatchString(msg):
		m := queryFieldRE.FindStringSubmatch(msg)
		field := lowerCamel(m[1])
		return InvalidArgument("invalid "+field, []validation.FieldViolation{{Field: field, Description: "invalid value: " + m[2]}})
	case pathParameterRE.MatchString(msg):
		m := pathParameterRE.FindStringSubmatch(msg)
		field := lowerCamel(m[1])
		return InvalidArgument("invalid "+field, []validation.FieldViolation{{Field: field, Description: "invalid value: " + m[2]}})
	default:
		return InvalidArgument("malformed request body", []validation.FieldViolation{{Field: "body", Description: msg}})
	}
}

// lowerCamel turns a proto field path (order_no) into its JSON name (orderNo).
func lowerCamel(s string) string {
	var b strings.Builder
	upper := false
	for _, r := range s {
		switch {
		case r == '_':
			upper = true
		case upper:
			b.WriteString(strings.ToUpper(string(r)))
			upper = false
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
