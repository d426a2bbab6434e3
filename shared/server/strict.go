package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/orderflow/orderflow/shared/validation"
)

// strictJSON is the gateway's marshaler with a decoder that takes a request
// body only when it is exactly one JSON value without duplicate keys:
// protojson alone reads the first value and ignores what follows it (a
// second value, trailing garbage), so a body a proxy or a client bug glued
// together would be half-read and still succeed.
type strictJSON struct {
	runtime.Marshaler
}

// NewDecoder reads the whole body (the HTTP handler has capped its size)
// and decodes it with protojson, which refuses what follows the first value
// when it is given the whole body (the gateway's streaming decoder would
// stop after it).
func (m strictJSON) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		raw, err := io.ReadAll(r)
		if err != nil {
			return bodyReadError(err)
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			// No body: the gateway's handlers take io.EOF as an empty
			// request, as protojson's own decoder reports it.
			return io.EOF
		}
		// protojson itself refuses a second value, trailing data and a
		// repeated field, so a body it takes needs no other check; only a
		// refused one is walked again, to name what is wrong precisely (the
		// walk costs as much as the decoding, so not on every request).
		err = m.unmarshal(raw, v)
		if err == nil {
			return nil
		}
		if precise := checkOneJSONValue(raw); precise != nil {
			return precise
		}
		// protojson names a bad value by its own name only (quantity, not
		// items[1].quantity) but says where it starts: name it by its path.
		if path, ok := protojsonErrorPath(raw, err); ok {
			return fmt.Errorf("%s %q: %s", fieldValueText, path, protojsonPositionRE.ReplaceAllString(err.Error(), ""))
		}
		return err
	})
}

// unmarshal decodes a request message with protojson straight from the
// body: runtime.JSONPb's Unmarshal first copies the value out with
// encoding/json, a second pass over the body that would also stop at the
// end of the first value. What is not a message takes that path.
func (m strictJSON) unmarshal(raw []byte, v any) error {
	if msg, ok := v.(proto.Message); ok {
		if pb, ok := m.Marshaler.(*runtime.JSONPb); ok {
			return pb.UnmarshalOptions.Unmarshal(raw, msg)
		}
	}
	return m.Unmarshal(raw, v)
}

// Delimiter is what a streaming response separates messages with; it is the
// wrapped marshaler's (runtime.Delimited is an optional interface).
func (m strictJSON) Delimiter() []byte {
	if d, ok := m.Marshaler.(runtime.Delimited); ok {
		return d.Delimiter()
	}
	return []byte("\n")
}

// Messages of the decoding errors: the gateway's handlers pass a decoder's
// error on as the text of an INVALID_ARGUMENT status, and describeDecodeError
// turns these texts back into field violations.
const (
	duplicateKeyText = "duplicate key"
	trailingDataText = "request body must be exactly one JSON value"
	bodyTimeoutText  = "request body not received within the read timeout"
	fieldValueText   = "invalid field"
)

// protojsonPositionRE finds where protojson says the key or value it
// refused starts: "(line 1:97): ", line and column counted from 1, the
// column in characters. protobuf puts a space or, depending on the build, a
// no-break space after "proto:", so that no one relies on its texts; this
// reads the position only and falls back to the plain text without one.
var protojsonPositionRE = regexp.MustCompile(`^proto:[\s\x{00a0}]*(?:syntax error )?\(line (\d+):(\d+)\):[\s\x{00a0}]*`)

// protojsonErrorPath is the path of the key or value a protojson error
// refers to, found by its position.
func protojsonErrorPath(raw []byte, err error) (string, bool) {
	m := protojsonPositionRE.FindStringSubmatch(err.Error())
	if m == nil {
		return "", false
	}
	line, _ := strconv.Atoi(m[1])
	column, _ := strconv.Atoi(m[2])
	pos := 0
	for ; line > 1; line-- {
		i := bytes.IndexByte(raw[pos:], '\n')
		if i < 0 {
			return "", false
		}
		pos += i + 1
	}
	for ; column > 1 && pos < len(raw); column-- {
		_, size := utf8.DecodeRune(raw[pos:])
		pos += size
	}
	return jsonPathAt(raw, pos)
}

// bodyReadError keeps a read error's meaning without its text, which names
// the connection's addresses (a read deadline: "read tcp a->b: i/o
// timeout"). A body over the size limit is passed on as it is.
func bodyReadError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New(bodyTimeoutText)
	}
	return errors.New("request body could not be read")
}

// checkOneJSONValue walks raw token by token: it must hold one JSON value,
// with no key twice in any object, and nothing but white space after it.
// A duplicate key is named by its path (items[0].menuId), in the names the
// client wrote.
func checkOneJSONValue(raw []byte) error { return walkJSON(raw, nil) }

// jsonPathAt is the path (items[0].quantity) of the key or value that
// starts at byte offset pos of raw, a body checkOneJSONValue took.
func jsonPathAt(raw []byte, pos int) (string, bool) {
	var found string
	_ = walkJSON(raw, func(path string, start int) bool {
		if start == pos {
			found = path
			return true
		}
		return start > pos
	})
	return found, found != ""
}

// walkJSON is checkOneJSONValue's walk; visit, when not nil, is given the
// path and start offset of every key and value in turn, and ends the walk
// by returning true.
func walkJSON(raw []byte, visit func(path string, start int) bool) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]bool
		index  int
		path   string
		expect bool // object: the next string token is a key
	}
	var stack []*frame
	pathOf := func(f *frame, key string) string {
		if f.path == "" {
			return key
		}
		return f.path + "." + key
	}
	// valuePath is the path of the value about to be read in the frame on top.
	var pendingKey string
	valuePath := func() string {
		if len(stack) == 0 {
			return ""
		}
		top := stack[len(stack)-1]
		if top.object {
			return pathOf(top, pendingKey)
		}
		return top.path + "[" + strconv.Itoa(top.index) + "]"
	}
	// endValue moves past a finished value in the frame on top.
	endValue := func() {
		if len(stack) == 0 {
			return
		}
		top := stack[len(stack)-1]
		if top.object {
			top.expect = true
		} else {
			top.index++
		}
	}
	for {
		// The next token starts after the white space and separators that
		// follow the previous one.
		start := int(dec.InputOffset())
		for start < len(raw) && strings.IndexByte(" \t\r\n:,", raw[start]) >= 0 {
			start++
		}
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			// Not wrapped: the gateway's handlers take io.EOF for an empty
			// body, and this one ended in the middle of a value.
			return errors.New("malformed JSON: unexpected end of the body")
		}
		if err != nil {
			return fmt.Errorf("malformed JSON: %w", err)
		}
		if visit != nil {
			if top := last(stack); top != nil && top.object && top.expect {
				if key, ok := tok.(string); ok && visit(pathOf(top, key), start) {
					return nil
				}
			} else if d, ok := tok.(json.Delim); !ok || d == '{' || d == '[' {
				if visit(valuePath(), start) {
					return nil
				}
			}
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				stack = append(stack, &frame{object: d == '{', keys: map[string]bool{}, path: valuePath(), expect: d == '{'})
			case '}', ']':
				stack = stack[:len(stack)-1]
				endValue()
			}
		} else if top := last(stack); top != nil && top.object && top.expect {
			key, _ := tok.(string)
			if top.keys[key] {
				return fmt.Errorf("%s %q", duplicateKeyText, pathOf(top, key))
			}
			top.keys[key] = true
			top.expect = false
			pendingKey = key
			continue
		} else {
			endValue()
		}
		if len(stack) == 0 {
			break
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New(trailingDataText)
	}
	return nil
}

func last[T any](s []*T) *T {
	if len(s) == 0 {
		return nil
	}
	return s[len(s)-1]
}

// requireJSON refuses a request with a body that is not application/json
// (a charset parameter, utf-8 only, is allowed) with 415 before the body is
// read: the API speaks JSON only, and a form or text/plain POST, which a
// browser sends cross-site without asking, never reaches a handler.
func requireJSON(mux func() *runtime.ServeMux) runtime.Middleware {
	return func(next runtime.HandlerFunc) runtime.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
			if hasBody(r) && !isJSON(r.Header.Get("Content-Type")) {
				_, out := runtime.MarshalerForRequest(mux(), r)
				err := &runtime.HTTPStatusError{HTTPStatus: http.StatusUnsupportedMediaType, Err: InvalidArgument(
					"unsupported Content-Type: the request body must be application/json",
					[]validation.FieldViolation{{Field: "Content-Type", Description: "must be application/json"}})}
				runtime.DefaultHTTPErrorHandler(r.Context(), mux(), out, w, r, err)
				return
			}
			next(w, r, params)
		}
	}
}

// hasBody: a request with a body says so by its length or by a transfer
// encoding (Go's server gives an unknown length as -1).
func hasBody(r *http.Request) bool {
	return r.ContentLength != 0 || len(r.TransferEncoding) > 0
}

func isJSON(contentType string) bool {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil || mediaType != "application/json" {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}

// probeKey marks the requests routingErrorHandler sends through the mux to
// learn which methods a path has; probeRoute answers them.
type probeKey struct{}

// probeRoute is the gateway's first middleware. A probe request that
// reached a route records the match and goes no further. A route without a
// custom verb that matched a path whose last segment has one
// (/v1/orders/7:explode or GET /v1/orders/7:cancel matching
// /v1/orders/{order_no}) is not a match: the path names a verb, which this
// route does not have; the request is answered as one no route took (405
// when another method has the verb, else 404). No route of the API ends in
// a path parameter that may hold a colon (the last segments are literals or
// numbers), so no legitimate request is refused this way.
func probeRoute(mux func() *runtime.ServeMux) runtime.Middleware {
	return func(next runtime.HandlerFunc) runtime.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
			matched, probing := r.Context().Value(probeKey{}).(*bool)
			if p, ok := runtime.HTTPPattern(r.Context()); ok && p.Verb() == "" && hasVerb(r.URL.Path) {
				if !probing {
					_, out := runtime.MarshalerForRequest(mux(), r)
					routingErrorHandler(r.Context(), mux(), out, w, r, http.StatusMethodNotAllowed)
				}
				return
			}
			if probing {
				*matched = true
				return
			}
			next(w, r, params)
		}
	}
}

func hasVerb(path string) bool {
	return strings.Contains(path[strings.LastIndexByte(path, '/')+1:], ":")
}

// probeMethods are the methods routingErrorHandler asks the mux about.
var probeMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// allowedMethods are the methods the mux has a route for at r's path.
func allowedMethods(mux *runtime.ServeMux, r *http.Request) []string {
	var allowed []string
	for _, m := range probeMethods {
		matched := false
		probe := r.Clone(context.WithValue(r.Context(), probeKey{}, &matched))
		probe.Method, probe.Body, probe.ContentLength = m, http.NoBody, 0
		mux.ServeHTTP(discardResponse{header: http.Header{}}, probe)
		if matched {
			allowed = append(allowed, m)
		}
	}
	return allowed
}

// discardResponse is the response writer of a probe, which writes nothing.
type discardResponse struct{ header http.Header }

func (d discardResponse) Header() http.Header         { return d.header }
func (d discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (d discardResponse) WriteHeader(int)             {}

// routingErrorHandler answers a request no route took. A path that has
// routes for other methods is 405 with an Allow header naming them (the
// gateway's default answers 501 UNIMPLEMENTED without one); a path with an
// unknown custom verb is 404 like any unknown path.
func routingErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	if _, probing := ctx.Value(probeKey{}).(*bool); probing {
		return
	}
	switch httpStatus {
	case http.StatusMethodNotAllowed:
		allowed := allowedMethods(mux, r)
		if len(allowed) == 0 || slices.Contains(allowed, r.Method) {
			notFound(ctx, mux, m, w, r)
			return
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		errorHandler(ctx, mux, m, w, r, &runtime.HTTPStatusError{HTTPStatus: http.StatusMethodNotAllowed,
			Err: status.Errorf(codes.Unimplemented, "method %s not allowed; allowed: %s", r.Method, strings.Join(allowed, ", "))})
	case http.StatusNotFound:
		notFound(ctx, mux, m, w, r)
	default:
		runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, httpStatus)
	}
}

func notFound(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request) {
	errorHandler(ctx, mux, m, w, r, status.Errorf(codes.NotFound, "no route for %s %s", r.Method, r.URL.Path))
}
