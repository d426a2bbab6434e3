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
// lowerCamelCase names and emits unpopulated fields (clients see
// "stale":false and empty page tokens). It is strict about what it takes: a
// request body must be application/json (else 415) and exactly one JSON
// value without unknown fields or duplicate keys (else INVALID_ARGUMENT with
// a field violation naming the field); a path with routes for other methods
// only is 405 with an Allow header, an unknown path or custom verb 404. A
// form-encoded POST is never read as a GET (the gateway's path length
// fallback and X-HTTP-Method-Override are off). Its handlers are registered
// with the Register...Handler functions on an InProcess connection, so every
// REST request runs the gRPC server's chain.
func NewGateway(opts ...runtime.ServeMuxOption) *runtime.ServeMux {
	marshaler := &runtime.HTTPBodyMarshaler{Marshaler: strictJSON{Marshaler: &runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}}}
	var mux *runtime.ServeMux
	base := []runtime.ServeMuxOption{
		runtime.WithMarshalerOption(runtime.MIMEWildcard, marshaler),
		runtime.WithErrorHandler(errorHandler),
		runtime.WithRoutingErrorHandler(routingErrorHandler),
		runtime.WithDisablePathLengthFallback(),
		runtime.WithDisableHTTPMethodOverride(),
		runtime.WithIncomingHeaderMatcher(incomingHeader),
		runtime.WithOutgoingHeaderMatcher(outgoingHeader),
		// probeRoute first: a probe goes no further than the route match.
		runtime.WithMiddlewares(probeRoute(func() *runtime.ServeMux { return mux }), requireJSON(func() *runtime.ServeMux { return mux }), recordRouteMiddleware),
	}
	mux = runtime.NewServeMux(append(base, opts...)...)
	return mux
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
	fieldValueRE    = regexp.MustCompile(fieldValueText + ` "([^"]+)": (.*)`)
	unknownFieldRE  = regexp.MustCompile(`unknown field "([^"]+)"`)
	duplicateRE     = regexp.MustCompile(`duplicate (?:field|key) "([^"]+)"`)
	tooManyRE       = regexp.MustCompile(`too many values for field "([a-zA-Z0-9_.]+)": (.*)`)
	queryListRE     = regexp.MustCompile(`parsing list "([a-zA-Z0-9_.]+)": (.*)`)
	invalidValueRE  = regexp.MustCompile(`invalid value for [a-z0-9 ]*field ([a-zA-Z0-9_]+): (.*)`)
	pathParameterRE = regexp.MustCompile(`parameter: ([a-zA-Z0-9_.]+), error: (.*)`)
	queryFieldRE    = regexp.MustCompile(`parsing field "([a-zA-Z0-9_.]+)": (.*)`)
)

// errorHandler gives the gateway's own decoding errors (which arrive as a
// bare INVALID_ARGUMENT with the decoder's text) a BadRequest field
// violation, turns a google.rpc.RetryInfo detail into a Retry-After header
// (whole seconds), then writes the status as JSON like every other error.
func errorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	// The headers this handler and the gateway derive from the status
	// itself are dropped from the forwarded response metadata, which would
	// add each a second time: Retry-After (from the RetryInfo detail) and,
	// on a 401, WWW-Authenticate (the gateway's, from the status message).
	md, hasMD := runtime.ServerMetadataFromContext(ctx)
	if d, ok := RetryAfter(err); ok {
		w.Header().Set(RetryAfterHeader, strconv.FormatInt(retryAfterSeconds(d), 10))
		if hasMD {
			delete(md.HeaderMD, "retry-after")
		}
	}
	if hasMD && status.Code(err) == codes.Unauthenticated {
		delete(md.HeaderMD, "www-authenticate")
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
	case fieldValueRE.MatchString(msg):
		m := fieldValueRE.FindStringSubmatch(msg)
		return InvalidArgument("invalid "+m[1], []validation.FieldViolation{{Field: m[1], Description: m[2]}})
	case unknownFieldRE.MatchString(msg):
		name := unknownFieldRE.FindStringSubmatch(msg)[1]
		return InvalidArgument("unknown field "+name, []validation.FieldViolation{{Field: name, Description: "unknown field"}})
	case strings.Contains(msg, trailingDataText):
		return InvalidArgument(trailingDataText, []validation.FieldViolation{{Field: "body", Description: "must be exactly one JSON value, with nothing after it"}})
	case strings.Contains(msg, bodyTimeoutText):
		return InvalidArgument(bodyTimeoutText, []validation.FieldViolation{{Field: "body", Description: "not received within the read timeout"}})
	case duplicateRE.MatchString(msg):
		name := duplicateRE.FindStringSubmatch(msg)[1]
		return InvalidArgument("duplicate field "+name, []validation.FieldViolation{{Field: name, Description: "given more than once"}})
	case tooManyRE.MatchString(msg):
		m := tooManyRE.FindStringSubmatch(msg)
		field := lowerCamel(m[1])
		return InvalidArgument("invalid "+field, []validation.FieldViolation{{Field: field, Description: "given more than once: " + m[2]}})
	case queryListRE.MatchString(msg):
		m := queryListRE.FindStringSubmatch(msg)
		field := lowerCamel(m[1])
		return InvalidArgument("invalid "+field, []validation.FieldViolation{{Field: field, Description: "invalid value: " + m[2]}})
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
