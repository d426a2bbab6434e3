package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	outboxv1 "github.com/orderflow/orderflow/shared/gen/orderflow/outbox/v1"
)

// FuzzStrictJSONDecode feeds any body to the decoder the gateway gives a
// JSON request (NewGateway's marshaler) and checks its promises: it never
// panics; a body it takes is exactly one JSON value without a key twice,
// and what it decoded survives a protojson round trip; a body it refuses
// becomes, as the gateway passes it on (INVALID_ARGUMENT with the text),
// an INVALID_ARGUMENT with a google.rpc.BadRequest naming a field; an empty
// body is io.EOF, which the handlers read as an empty request.
func FuzzStrictJSONDecode(f *testing.F) {
	// The request bodies the REST APIs decode, picked by the first argument.
	fuzzMessages := []func() proto.Message{
		func() proto.Message { return &orderv1.PlaceOrderRequest{} },
		func() proto.Message { return &orderv1.AdvanceOrderRequest{} },
		func() proto.Message { return &orderv1.CancelOrderRequest{} },
		func() proto.Message { return &outboxv1.ReplayOutboxMessagesRequest{} },
	}
	for _, seed := range []string{
		`{"requestId":"r-1","userId":"u-1","shopId":"s-1","items":[{"menuId":"m-1","name":"Bibimbap","quantity":2,"unitPrice":"9000"}],"deliveryAddress":"1 Teheran-ro, Seoul"}`,
		`{"requestId":"r-1"}{"requestId":"r-2"}`,
		`{"requestId":"r-1"} trailing`,
		`{"requestId":"r-1","requestId":"r-2"}`,
		`{"items":[{"menuId":"a","menuId":"b"}]}`,
		`{"items":[{"menu_id":"a"}],"request_id":"x"}`,
		`{"coupon":"FREE"}`,
		`{"requestId":`,
		`{"items":[{"quantity":"two"}]}`,
		`{"items":[{"unitPrice":"9223372036854775808"}]}`,
		`{"items":[{"unitPrice":1e3}]}`,
		`{"status":"ACCEPTED"}`,
		`{"status":99}`,
		`{"status":"FLYING"}`,
		`{"reason":"wrong\u0000shop"}`,
		`{"reason":"\ud800"}`,
		"{\"reason\":\"\xff\"}",
		`{"ids":["1","2"],"shard":0,"dryRun":true,"reason":"r"}`,
		`{"filter":{"status":42}}`,
		`[]`, `null`, `"x"`, `0`, ``, "   \n", `{}`, `{} `, `{}{}`, `{"a":{"b":[1,{"c":1,"c":2}]}}`,
	} {
		for i := range fuzzMessages {
			f.Add(byte(i), []byte(seed))
		}
	}
	mux := NewGateway()
	req := httptest.NewRequest(http.MethodPost, "/v1/orders", nil)
	req.Header.Set("Content-Type", "application/json")
	_, in := runtime.MarshalerForRequest(mux, req)

	f.Fuzz(func(t *testing.T, pick byte, body []byte) {
		newMsg := fuzzMessages[int(pick)%len(fuzzMessages)]
		msg := newMsg()
		err := in.NewDecoder(bytes.NewReader(body)).Decode(msg)

		if errors.Is(err, io.EOF) {
			if len(bytes.TrimSpace(body)) != 0 {
				t.Fatalf("io.EOF for the non-empty body %q", body)
			}
			return
		}
		if err == nil {
			if !json.Valid(body) {
				t.Fatalf("took %q, which is not JSON", body)
			}
			if precise := checkOneJSONValue(body); precise != nil {
				t.Fatalf("took %q, which is not one JSON value without a duplicate key: %v", body, precise)
			}
			out, merr := protojson.Marshal(msg)
			if merr != nil {
				t.Fatalf("what %q decoded to does not marshal: %v", body, merr)
			}
			again := newMsg()
			if uerr := protojson.Unmarshal(out, again); uerr != nil || !proto.Equal(msg, again) {
				t.Fatalf("%q decoded to %v, which does not round-trip (%s, %v)", body, msg, out, uerr)
			}
			return
		}
		// As the generated handlers pass a decoding error on.
		st := status.Convert(describeDecodeError(status.Errorf(codes.InvalidArgument, "%v", err)))
		if st.Code() != codes.InvalidArgument {
			t.Fatalf("refusing %q: code %s, want InvalidArgument", body, st.Code())
		}
		var br *errdetails.BadRequest
		for _, d := range st.Details() {
			if b, ok := d.(*errdetails.BadRequest); ok {
				br = b
			}
		}
		if br == nil || len(br.GetFieldViolations()) == 0 {
			t.Fatalf("refusing %q: no field violation in %v", body, st.Proto())
		}
		for _, v := range br.GetFieldViolations() {
			if v.GetField() == "" || v.GetDescription() == "" {
				t.Fatalf("refusing %q: a field violation without a field or description: %v", body, v)
			}
		}
	})
}
