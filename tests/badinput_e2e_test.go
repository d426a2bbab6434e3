package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	stdhttp "net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
	outboxv1 "github.com/orderflow/orderflow/shared/gen/orderflow/outbox/v1"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// restCall is one HTTP request of a bad-input case.
type restCall struct {
	service     string // "command", "query" or "admin"
	method      string
	path        string // with the query string, already escaped
	contentType string // default application/json when there is a body
	body        string
}

// grpcClients are the gRPC APIs a case may call, with the caller's
// credentials in the context.
type grpcClients struct {
	command  orderv1.OrderCommandServiceClient
	query    orderv1.OrderQueryServiceClient
	admin    outboxv1.OutboxAdminServiceClient
	ctx      func() context.Context // an operator's
	adminCtx func() context.Context
}

// badInputCase is one malformed request, sent over REST and over gRPC (when
// the protocol can carry the mistake: JSON syntax, media types and HTTP
// methods exist only on REST), refused with the status and the field
// violation given, and changing nothing.
type badInputCase struct {
	name      string
	rest      *restCall
	wantHTTP  int
	wantCode  codes.Code
	wantField string // the one field violation; "" for refusals without one (405, 404)
	grpc      func(c grpcClients) error
	// grpcCode and grpcField are the outcome over gRPC when it differs
	// from REST's; grpcField "-" is no field violation.
	grpcCode  codes.Code
	grpcField string
}

// placeJSON is a valid PlaceOrder body with one JSON fragment replaced.
func placeJSON(from, to string) string {
	b := `{"requestId":"bad-1","userId":"u-1","shopId":"s-1","items":[{"menuId":"m-1","name":"Bibimbap","quantity":2,"unitPrice":"9000"},` +
		`{"menuId":"m-2","name":"Kimchi","quantity":1,"unitPrice":"1500"}],"deliveryAddress":"1 Teheran-ro, Seoul"}`
	if from != "" && !strings.Contains(b, from) {
		panic("placeJSON: no " + from)
	}
	return strings.Replace(b, from, to, 1)
}

// placeProto is the same valid request for gRPC, edited.
func placeProto(edit func(*orderv1.PlaceOrderRequest)) *orderv1.PlaceOrderRequest {
	r := &orderv1.PlaceOrderRequest{RequestId: "bad-1", UserId: "u-1", ShopId: "s-1", DeliveryAddress: "1 Teheran-ro, Seoul",
		Items: []*orderv1.OrderItem{
			{MenuId: "m-1", Name: "Bibimbap", Quantity: 2, UnitPrice: 9000},
			{MenuId: "m-2", Name: "Kimchi", Quantity: 1, UnitPrice: 1500},
		}}
	edit(r)
	return r
}

func placeCase(name, from, to string, edit func(*orderv1.PlaceOrderRequest), field string) badInputCase {
	return badInputCase{name: name, rest: &restCall{service: "command", method: "POST", path: "/v1/orders", body: placeJSON(from, to)},
		wantHTTP: 400, wantCode: codes.InvalidArgument, wantField: field,
		grpc: func(c grpcClients) error { _, err := c.command.PlaceOrder(c.ctx(), placeProto(edit)); return err }}
}

func badInputCases(orderNo int64) []badInputCase {
	no := fmt.Sprint(orderNo)
	long := func(n int) string { return strings.Repeat("x", n) }
	invalid := func(name string, rest *restCall, field string, call func(c grpcClients) error) badInputCase {
		return badInputCase{name: name, rest: rest, wantHTTP: 400, wantCode: codes.InvalidArgument, wantField: field, grpc: call}
	}
	manyItems := "[" + strings.TrimSuffix(strings.Repeat(`{"menuId":"m","name":"n","quantity":1,"unitPrice":"100"},`, 101), ",") + "]"
	return []badInputCase{
		// Identifiers.
		placeCase("empty requestId", `"requestId":"bad-1"`, `"requestId":""`, func(r *orderv1.PlaceOrderRequest) { r.RequestId = "" }, "requestId"),
		placeCase("65-character requestId", `"bad-1"`, `"`+long(65)+`"`, func(r *orderv1.PlaceOrderRequest) { r.RequestId = long(65) }, "requestId"),
		placeCase("requestId only spaces", `"bad-1"`, `"   "`, func(r *orderv1.PlaceOrderRequest) { r.RequestId = "   " }, "requestId"),
		placeCase("requestId with NUL", `"bad-1"`, `"bad\u00001"`, func(r *orderv1.PlaceOrderRequest) { r.RequestId = "bad\x001" }, "requestId"),
		placeCase("requestId with a newline", `"bad-1"`, `"bad\n1"`, func(r *orderv1.PlaceOrderRequest) { r.RequestId = "bad\n1" }, "requestId"),
		placeCase("requestId a single dot", `"bad-1"`, `"."`, func(r *orderv1.PlaceOrderRequest) { r.RequestId = "." }, "requestId"),
		placeCase("userId with a slash", `"u-1"`, `"a/b"`, func(r *orderv1.PlaceOrderRequest) { r.UserId = "a/b" }, "userId"),
		placeCase("userId two dots", `"u-1"`, `".."`, func(r *orderv1.PlaceOrderRequest) { r.UserId = ".." }, "userId"),
		placeCase("userId in Korean", `"u-1"`, `"사용자"`, func(r *orderv1.PlaceOrderRequest) { r.UserId = "사용자" }, "userId"),
		placeCase("shopId with a percent sign", `"s-1"`, `"s%2F1"`, func(r *orderv1.PlaceOrderRequest) { r.ShopId = "s%2F1" }, "shopId"),
		placeCase("empty shopId", `"s-1"`, `""`, func(r *orderv1.PlaceOrderRequest) { r.ShopId = "" }, "shopId"),
		placeCase("menuId with a colon", `"m-2"`, `"m:2"`, func(r *orderv1.PlaceOrderRequest) { r.Items[1].MenuId = "m:2" }, "items[1].menuId"),

		// Free text.
		placeCase("empty item name", `"Bibimbap"`, `""`, func(r *orderv1.PlaceOrderRequest) { r.Items[0].Name = "" }, "items[0].name"),
		placeCase("item name only spaces", `"Kimchi"`, `"   "`, func(r *orderv1.PlaceOrderRequest) { r.Items[1].Name = "   " }, "items[1].name"),
		placeCase("item name with a newline", `"Bibimbap"`, `"Bibim\nbap"`, func(r *orderv1.PlaceOrderRequest) { r.Items[0].Name = "Bibim\nbap" }, "items[0].name"),
		placeCase("item name with an escape sequence", `"Bibimbap"`, `"\u001b[31mBibimbap"`, func(r *orderv1.PlaceOrderRequest) { r.Items[0].Name = "\x1b[31mBibimbap" }, "items[0].name"),
		placeCase("item name of 201 characters", `"Bibimbap"`, `"`+strings.Repeat("밥", 201)+`"`, func(r *orderv1.PlaceOrderRequest) { r.Items[0].Name = strings.Repeat("밥", 201) }, "items[0].name"),
		placeCase("empty address", `"1 Teheran-ro, Seoul"`, `""`, func(r *orderv1.PlaceOrderRequest) { r.DeliveryAddress = "" }, "deliveryAddress"),
		placeCase("address only white space", `"1 Teheran-ro, Seoul"`, `" \n "`, func(r *orderv1.PlaceOrderRequest) { r.DeliveryAddress = " \n " }, "deliveryAddress"),
		placeCase("address with a tab", `"1 Teheran-ro, Seoul"`, `"1 Teheran-ro\tSeoul"`, func(r *orderv1.PlaceOrderRequest) { r.DeliveryAddress = "1 Teheran-ro\tSeoul" }, "deliveryAddress"),
		placeCase("address of 513 characters", `"1 Teheran-ro, Seoul"`, `"`+long(513)+`"`, func(r *orderv1.PlaceOrderRequest) { r.DeliveryAddress = long(513) }, "deliveryAddress"),

		// Items and money.
		placeCase("no items", `[{"menuId":"m-1","name":"Bibimbap","quantity":2,"unitPrice":"9000"},{"menuId":"m-2","name":"Kimchi","quantity":1,"unitPrice":"1500"}]`, `[]`,
			func(r *orderv1.PlaceOrderRequest) { r.Items = nil }, "items"),
		placeCase("101 items", `[{"menuId":"m-1","name":"Bibimbap","quantity":2,"unitPrice":"9000"},{"menuId":"m-2","name":"Kimchi","quantity":1,"unitPrice":"1500"}]`, manyItems,
			func(r *orderv1.PlaceOrderRequest) {
				r.Items = nil
				for range 101 {
					r.Items = append(r.Items, &orderv1.OrderItem{MenuId: "m", Name: "n", Quantity: 1, UnitPrice: 100})
				}
			}, "items"),
		placeCase("quantity 0", `"quantity":2`, `"quantity":0`, func(r *orderv1.PlaceOrderRequest) { r.Items[0].Quantity = 0 }, "items[0].quantity"),
		placeCase("quantity 1000", `"quantity":1,`, `"quantity":1000,`, func(r *orderv1.PlaceOrderRequest) { r.Items[1].Quantity = 1000 }, "items[1].quantity"),
		placeCase("unit price 0", `"9000"`, `"0"`, func(r *orderv1.PlaceOrderRequest) { r.Items[0].UnitPrice = 0 }, "items[0].unitPrice"),
		placeCase("unit price 1,000,001", `"1500"`, `"1000001"`, func(r *orderv1.PlaceOrderRequest) { r.Items[1].UnitPrice = 1_000_001 }, "items[1].unitPrice"),
		placeCase("unit price of MaxInt64", `"9000"`, `"9223372036854775807"`, func(r *orderv1.PlaceOrderRequest) { r.Items[0].UnitPrice = 1<<63 - 1 }, "items[0].unitPrice"),
		placeCase("total over 10,000,000", `"quantity":2,"unitPrice":"9000"`, `"quantity":11,"unitPrice":"1000000"`,
			func(r *orderv1.PlaceOrderRequest) { r.Items[0].Quantity, r.Items[0].UnitPrice = 11, 1_000_000 }, "items"),
		// 70 KiB: over the REST body limit and gRPC's message limit (64 KiB
		// each), which gRPC's transport enforces before any handler runs.
		{name: "oversized request", rest: &restCall{service: "command", method: "POST", path: "/v1/orders", body: placeJSON(`"1 Teheran-ro, Seoul"`, `"`+long(70<<10)+`"`)},
			wantHTTP: 400, wantCode: codes.InvalidArgument, wantField: "body", grpcCode: codes.ResourceExhausted, grpcField: "-",
			grpc: func(c grpcClients) error {
				_, err := c.command.PlaceOrder(c.ctx(), placeProto(func(r *orderv1.PlaceOrderRequest) { r.DeliveryAddress = long(70 << 10) }))
				return err
			}},

		// Changes and reads of an order.
		invalid("advance to STATUS_UNSPECIFIED", &restCall{service: "command", method: "POST", path: "/v1/orders/" + no + ":advance", body: `{"status":"STATUS_UNSPECIFIED"}`}, "status",
			func(c grpcClients) error {
				_, err := c.command.AdvanceOrder(c.ctx(), &orderv1.AdvanceOrderRequest{OrderNo: orderNo})
				return err
			}),
		invalid("advance to an unknown status number", &restCall{service: "command", method: "POST", path: "/v1/orders/" + no + ":advance", body: `{"status":42}`}, "status",
			func(c grpcClients) error {
				_, err := c.command.AdvanceOrder(c.ctx(), &orderv1.AdvanceOrderRequest{OrderNo: orderNo, Status: 42})
				return err
			}),
		invalid("advance order number 0", &restCall{service: "command", method: "POST", path: "/v1/orders/0:advance", body: `{"status":"ACCEPTED"}`}, "orderNo",
			func(c grpcClients) error {
				_, err := c.command.AdvanceOrder(c.ctx(), &orderv1.AdvanceOrderRequest{Status: orderv1.Order_ACCEPTED})
				return err
			}),
		invalid("cancel without a reason", &restCall{service: "command", method: "POST", path: "/v1/orders/" + no + ":cancel", body: `{}`}, "reason",
			func(c grpcClients) error {
				_, err := c.command.CancelOrder(c.ctx(), &orderv1.CancelOrderRequest{OrderNo: orderNo})
				return err
			}),
		invalid("cancel reason of three spaces", &restCall{service: "command", method: "POST", path: "/v1/orders/" + no + ":cancel", body: `{"reason":"   "}`}, "reason",
			func(c grpcClients) error {
				_, err := c.command.CancelOrder(c.ctx(), &orderv1.CancelOrderRequest{OrderNo: orderNo, Reason: "   "})
				return err
			}),
		invalid("cancel reason with NUL", &restCall{service: "command", method: "POST", path: "/v1/orders/" + no + ":cancel", body: `{"reason":"wrong\u0000shop"}`}, "reason",
			func(c grpcClients) error {
				_, err := c.command.CancelOrder(c.ctx(), &orderv1.CancelOrderRequest{OrderNo: orderNo, Reason: "wrong\x00shop"})
				return err
			}),
		invalid("cancel reason of 513 characters", &restCall{service: "command", method: "POST", path: "/v1/orders/" + no + ":cancel", body: `{"reason":"` + long(513) + `"}`}, "reason",
			func(c grpcClients) error {
				_, err := c.command.CancelOrder(c.ctx(), &orderv1.CancelOrderRequest{OrderNo: orderNo, Reason: long(513)})
				return err
			}),
		invalid("get order number 0", &restCall{service: "command", method: "GET", path: "/v1/orders/0"}, "orderNo",
			func(c grpcClients) error {
				_, err := c.command.GetOrder(c.ctx(), &orderv1.GetOrderRequest{})
				return err
			}),
		invalid("get a negative order number from the read side", &restCall{service: "query", method: "GET", path: "/v1/orders/-5"}, "orderNo",
			func(c grpcClients) error {
				_, err := c.query.GetOrder(c.ctx(), &orderv1.GetOrderViewRequest{OrderNo: -5})
				return err
			}),
		invalid("negative minVersion", &restCall{service: "query", method: "GET", path: "/v1/orders/" + no + "?minVersion=-1"}, "minVersion",
			func(c grpcClients) error {
				_, err := c.query.GetOrder(c.ctx(), &orderv1.GetOrderViewRequest{OrderNo: orderNo, MinVersion: -1})
				return err
			}),

		// The read side's ids in paths, and its query parameters.
		invalid("user id with a space in the path", &restCall{service: "query", method: "GET", path: "/v1/users/" + url.PathEscape("u 1") + "/orders"}, "userId",
			func(c grpcClients) error {
				_, err := c.query.ListUserOrders(c.ctx(), &orderv1.ListUserOrdersRequest{UserId: "u 1"})
				return err
			}),
		invalid("user id with NUL in the path", &restCall{service: "query", method: "GET", path: "/v1/users/u%001/orders"}, "userId",
			func(c grpcClients) error {
				_, err := c.query.ListUserOrders(c.ctx(), &orderv1.ListUserOrdersRequest{UserId: "u\x001"})
				return err
			}),
		invalid("user id of 65 characters in the path", &restCall{service: "query", method: "GET", path: "/v1/users/" + long(65) + "/orders"}, "userId",
			func(c grpcClients) error {
				_, err := c.query.ListUserOrders(c.ctx(), &orderv1.ListUserOrdersRequest{UserId: long(65)})
				return err
			}),
		invalid("shop id in Korean in the path", &restCall{service: "query", method: "GET", path: "/v1/shops/" + url.PathEscape("가게") + "/orders"}, "shopId",
			func(c grpcClients) error {
				_, err := c.query.ListShopOrders(c.ctx(), &orderv1.ListShopOrdersRequest{ShopId: "가게"})
				return err
			}),
		invalid("page size 101", &restCall{service: "query", method: "GET", path: "/v1/shops/s-1/orders?pageSize=101"}, "pageSize",
			func(c grpcClients) error {
				_, err := c.query.ListShopOrders(c.ctx(), &orderv1.ListShopOrdersRequest{ShopId: "s-1", PageSize: 101})
				return err
			}),
		invalid("page size that is not a number", &restCall{service: "query", method: "GET", path: "/v1/users/u-1/orders?pageSize=ten"}, "pageSize", nil),
		invalid("unknown status filter", &restCall{service: "query", method: "GET", path: "/v1/shops/s-1/orders?status=FLYING"}, "status",
			func(c grpcClients) error {
				_, err := c.query.ListShopOrders(c.ctx(), &orderv1.ListShopOrdersRequest{ShopId: "s-1", Status: 42})
				return err
			}),
		invalid("page token not issued by the service", &restCall{service: "query", method: "GET", path: "/v1/users/u-1/orders?pageToken=garbage"}, "pageToken",
			func(c grpcClients) error {
				_, err := c.query.ListUserOrders(c.ctx(), &orderv1.ListUserOrdersRequest{UserId: "u-1", PageToken: "garbage"})
				return err
			}),

		// What only REST can get wrong: JSON, media types, methods, paths.
		invalid("malformed JSON", &restCall{service: "command", method: "POST", path: "/v1/orders", body: `{"requestId":`}, "body", nil),
		invalid("a second JSON value", &restCall{service: "command", method: "POST", path: "/v1/orders", body: placeJSON("", "") + `{}`}, "body", nil),
		invalid("unknown field", &restCall{service: "command", method: "POST", path: "/v1/orders", body: placeJSON(`"userId"`, `"coupon":"FREE","userId"`)}, "coupon", nil),
		invalid("a key given twice", &restCall{service: "command", method: "POST", path: "/v1/orders", body: placeJSON(`"userId":"u-1"`, `"userId":"u-1","userId":"u-2"`)}, "userId", nil),
		invalid("quantity of the wrong type", &restCall{service: "command", method: "POST", path: "/v1/orders", body: placeJSON(`"quantity":2`, `"quantity":"two"`)}, "items[0].quantity", nil),
		invalid("status name unknown", &restCall{service: "command", method: "POST", path: "/v1/orders/" + no + ":advance", body: `{"status":"FLYING"}`}, "status", nil),
		invalid("order number that is not a number", &restCall{service: "command", method: "GET", path: "/v1/orders/abc"}, "orderNo", nil),
		{name: "body as text/plain", rest: &restCall{service: "command", method: "POST", path: "/v1/orders", contentType: "text/plain", body: placeJSON("", "")},
			wantHTTP: 415, wantCode: codes.InvalidArgument, wantField: "Content-Type"},
		{name: "body as a form", rest: &restCall{service: "command", method: "POST", path: "/v1/orders/" + no + ":cancel", contentType: "application/x-www-form-urlencoded", body: "reason=x"},
			wantHTTP: 415, wantCode: codes.InvalidArgument, wantField: "Content-Type"},
		{name: "wrong method", rest: &restCall{service: "command", method: "DELETE", path: "/v1/orders/" + no}, wantHTTP: 405, wantCode: codes.Unimplemented},
		{name: "unknown custom verb", rest: &restCall{service: "command", method: "POST", path: "/v1/orders/" + no + ":refund", body: `{}`}, wantHTTP: 404, wantCode: codes.NotFound},

		// The relay's admin API.
		invalid("replay of id 0", &restCall{service: "admin", method: "POST", path: "/v1/outbox/messages:replay", body: `{"shard":"shard-0","ids":["0"],"reason":"retry"}`}, "ids[0]",
			func(c grpcClients) error {
				_, err := c.admin.ReplayOutboxMessages(c.adminCtx(), &outboxv1.ReplayOutboxMessagesRequest{Shard: "shard-0", Ids: []int64{0}, Reason: "retry"})
				return err
			}),
		invalid("replay filter of an unknown status number", &restCall{service: "admin", method: "POST", path: "/v1/outbox/messages:replay", body: `{"filter":{"status":42},"reason":"retry"}`}, "filter.status",
			func(c grpcClients) error {
				_, err := c.admin.ReplayOutboxMessages(c.adminCtx(), &outboxv1.ReplayOutboxMessagesRequest{Filter: &outboxv1.MessageFilter{Status: 42}, Reason: "retry"})
				return err
			}),
		invalid("replay of ids and a filter", &restCall{service: "admin", method: "POST", path: "/v1/outbox/messages:replay", body: `{"shard":"shard-0","ids":["1"],"filter":{"status":"MESSAGE_STATUS_FAILED"},"reason":"retry"}`}, "filter",
			func(c grpcClients) error {
				_, err := c.admin.ReplayOutboxMessages(c.adminCtx(), &outboxv1.ReplayOutboxMessagesRequest{Shard: "shard-0", Ids: []int64{1},
					Filter: &outboxv1.MessageFilter{Status: outboxv1.MessageStatus_MESSAGE_STATUS_FAILED}, Reason: "retry"})
				return err
			}),
		invalid("replay without a reason", &restCall{service: "admin", method: "POST", path: "/v1/outbox/messages:replay", body: `{"filter":{"status":"MESSAGE_STATUS_FAILED"}}`}, "reason",
			func(c grpcClients) error {
				_, err := c.admin.ReplayOutboxMessages(c.adminCtx(), &outboxv1.ReplayOutboxMessagesRequest{Filter: &outboxv1.MessageFilter{Status: outboxv1.MessageStatus_MESSAGE_STATUS_FAILED}})
				return err
			}),
		invalid("replay filter with an impossible timestamp", &restCall{service: "admin", method: "POST", path: "/v1/outbox/messages:replay", body: `{"filter":{"since":"10000-01-01T00:00:00Z"},"reason":"retry"}`}, "filter.since",
			func(c grpcClients) error {
				_, err := c.admin.ReplayOutboxMessages(c.adminCtx(), &outboxv1.ReplayOutboxMessagesRequest{
					Filter: &outboxv1.MessageFilter{Since: &timestamppb.Timestamp{Seconds: 253402300800}}, Reason: "retry"})
				return err
			}),
		invalid("outbox list page size 1001", &restCall{service: "admin", method: "GET", path: "/v1/outbox/messages?pageSize=1001"}, "pageSize",
			func(c grpcClients) error {
				_, err := c.admin.ListOutboxMessages(c.adminCtx(), &outboxv1.ListOutboxMessagesRequest{PageSize: 1001})
				return err
			}),
		invalid("outbox message id 0", &restCall{service: "admin", method: "GET", path: "/v1/outbox/messages/shard-0/0"}, "id",
			func(c grpcClients) error {
				_, err := c.admin.GetOutboxMessage(c.adminCtx(), &outboxv1.GetOutboxMessageRequest{Shard: "shard-0"})
				return err
			}),
	}
}

func grpcViolations(err error) []string {
	var fields []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return fields
}

// restStatus is a google.rpc.Status as the REST APIs write it.
type restStatus struct {
	Code    codes.Code `json:"code"`
	Message string     `json:"message"`
	Details []struct {
		Type            string `json:"@type"`
		FieldViolations []struct {
			Field       string `json:"field"`
			Description string `json:"description"`
		} `json:"fieldViolations"`
	} `json:"details"`
}

// TestBadInputIsRefusedPreciselyAndChangesNothing sends every kind of
// malformed request over REST and over gRPC to order-command, order-query
// and the relay's admin API: each is refused with its status code and
// exactly the field violation of what is wrong, and afterwards the rows of
// orders, order_items and outbox on every shard and the documents of the
// read store are as many as before.
func TestBadInputIsRefusedPreciselyAndChangesNothing(t *testing.T) {
	testinfra.Integration(t)
	sys := startInputSystem(t)
	relayHTTP, relayGRPC := sys.startAdminRelay(t)

	dial := func(target string) *grpc.ClientConn {
		conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	bearer := func(token string) func() context.Context {
		return func() context.Context {
			return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+token)
		}
	}
	clients := grpcClients{
		command:  orderv1.NewOrderCommandServiceClient(dial(sys.commandGRPC)),
		query:    orderv1.NewOrderQueryServiceClient(dial(sys.queryGRPC)),
		admin:    outboxv1.NewOutboxAdminServiceClient(dial(relayGRPC)),
		ctx:      bearer(sys.operatorToken),
		adminCtx: bearer(badInputAdminToken),
	}

	// One order, so the changes and reads have an order to be about, and
	// the counts start above zero.
	placed, err := clients.command.PlaceOrder(clients.ctx(), placeProto(func(r *orderv1.PlaceOrderRequest) { r.RequestId = "bad-input-existing" }))
	if err != nil {
		t.Fatalf("placing the order the cases are about: %v", err)
	}
	orderNo := placed.GetOrder().GetOrderNo()

	hosts := map[string]string{"command": sys.command, "query": sys.query, "admin": relayHTTP}
	tokens := map[string]string{"command": sys.operatorToken, "query": sys.operatorToken, "admin": badInputAdminToken}
	cases := badInputCases(orderNo)
	both := 0
	for _, tc := range cases {
		if tc.rest != nil && tc.grpc != nil {
			both++
		}
	}
	if both < 40 {
		t.Fatalf("%d cases run over both REST and gRPC, want at least 40", both)
	}
	t.Logf("%d cases, %d of them over both REST and gRPC", len(cases), both)

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := sys.counts(t)
			if tc.rest != nil {
				r := tc.rest
				req, err := stdhttp.NewRequestWithContext(t.Context(), r.method, "http://"+hosts[r.service]+r.path, strings.NewReader(r.body))
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case r.contentType != "":
					req.Header.Set("Content-Type", r.contentType)
				case r.body != "":
					req.Header.Set("Content-Type", "application/json")
				}
				req.Header.Set("Authorization", "Bearer "+tokens[r.service])
				resp, err := stdhttp.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var st restStatus
				if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&st); err != nil {
					t.Fatalf("REST: HTTP %d, body %q is not a google.rpc.Status: %v", resp.StatusCode, raw, err)
				}
				if resp.StatusCode != tc.wantHTTP || st.Code != tc.wantCode {
					t.Errorf("REST: HTTP %d code %s, want HTTP %d code %s (%s)", resp.StatusCode, st.Code, tc.wantHTTP, tc.wantCode, raw)
				}
				var fields []string
				for _, d := range st.Details {
					if d.Type == "type.googleapis.com/google.rpc.BadRequest" {
						for _, v := range d.FieldViolations {
							fields = append(fields, v.Field)
							if v.Description == "" {
								t.Errorf("REST: violation of %s without a description", v.Field)
							}
						}
					}
				}
				if want := wantFields(tc.wantField); !slices.Equal(fields, want) {
					t.Errorf("REST: field violations %q, want %q (%s)", fields, want, raw)
				}
			}
			if tc.grpc != nil {
				err := tc.grpc(clients)
				wantCode, want := tc.wantCode, wantFields(tc.wantField)
				if tc.grpcCode != codes.OK {
					wantCode = tc.grpcCode
				}
				switch tc.grpcField {
				case "":
				case "-":
					want = nil
				default:
					want = wantFields(tc.grpcField)
				}
				if got := status.Code(err); got != wantCode {
					t.Errorf("gRPC: code %s, want %s (%v)", got, wantCode, err)
				}
				if got := grpcViolations(err); !slices.Equal(got, want) {
					t.Errorf("gRPC: field violations %q, want %q (%v)", got, want, err)
				}
			}
			// A request is refused before any transaction begins, and
			// nothing is written for it afterwards: the counts right after
			// the answer are the counts for good.
			if after := sys.counts(t); !maps.Equal(before, after) {
				t.Fatalf("counts changed: before %v, after %v", before, after)
			}
		})
	}
}

func wantFields(field string) []string {
	if field == "" {
		return nil
	}
	return []string{field}
}
