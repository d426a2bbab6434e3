// Package orderapi is the load tools' client of the public order APIs: it
// places, changes and reads orders over REST or gRPC with the same calls, so
// a benchmark can be run over either.
package orderapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/orderflow/orderflow/shared/authclient"
	orderv1 "github.com/orderflow/orderflow/shared/gen/orderflow/order/v1"
)

// Endpoints of the running services. Each may list several instances,
// comma-separated: calls are spread over them round-robin.
type Endpoints struct {
	// Over is "rest" or "grpc".
	Over                   string
	CommandREST, QueryREST string
	CommandGRPC, QueryGRPC string
	// Tokens signs the calls' bearer tokens (nil: calls carry none, for a
	// system with authentication off). An order is placed with its user's
	// own token, so each user has its own PlaceOrder limit as in
	// production; the changes and reads, which know only the order
	// number, are an operator's.
	Tokens *authclient.Minter
}

// Client talks to order-command and order-query.
type Client interface {
	// Place places a one-item order for user and shop number i and returns
	// its order number.
	Place(ctx context.Context, requestID string, i int64) (int64, error)
	// Cancel cancels the order and returns its new version.
	Cancel(ctx context.Context, orderNo int64) (int64, error)
	// Accept advances a placed order to ACCEPTED and returns its new version.
	Accept(ctx context.Context, orderNo int64) (int64, error)
	// Read asks the query service for the order with minVersion and reports
	// whether it was visible at that version before the server's wait ended.
	Read(ctx context.Context, orderNo, minVersion int64) (bool, error)
	Close()
}

// New connects to the services over e.Over.
func New(e Endpoints) (Client, error) {
	switch e.Over {
	case "rest", "":
		return &restClient{command: newRotation(e.CommandREST), query: newRotation(e.QueryREST), tokens: e.Tokens, c: &http.Client{Timeout: 10 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512}}}, nil
	case "grpc":
		cc, err := DialSpread(e.CommandGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, err
		}
		qc, err := DialSpread(e.QueryGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			_ = cc.Close()
			return nil, err
		}
		return &grpcClient{conns: []*grpc.ClientConn{cc, qc}, tokens: e.Tokens,
			command: orderv1.NewOrderCommandServiceClient(cc), query: orderv1.NewOrderQueryServiceClient(qc)}, nil
	default:
		return nil, fmt.Errorf("over must be rest or grpc, got %q", e.Over)
	}
}

const callTimeout = 10 * time.Second

type restClient struct {
	command, query *rotation
	tokens         *authclient.Minter
	c              *http.Client
}

type restOrder struct {
	Order struct {
		OrderNo string `json:"orderNo"`
		Version int64  `json:"version"`
	} `json:"order"`
	Stale bool `json:"stale"`
}

// userOf and shopOf are the user and shop of order number i of a run.
func userOf(i int64) string { return fmt.Sprintf("user-%d", i%5000) }
func shopOf(i int64) string { return fmt.Sprintf("shop-%d", i%300) }

// userToken and operatorToken are "" without a minter.
func userToken(m *authclient.Minter, user string) (string, error) {
	if m == nil {
		return "", nil
	}
	return m.User(user)
}

func operatorToken(m *authclient.Minter) (string, error) {
	if m == nil {
		return "", nil
	}
	return m.Operator()
}

func (r *restClient) do(ctx context.Context, token, method, url, body string) (restOrder, int, error) {
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, reader)
	if err != nil {
		return restOrder{}, 0, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	authclient.SetBearer(req, token)
	resp, err := r.c.Do(req)
	if err != nil {
		return restOrder{}, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return restOrder{}, resp.StatusCode, fmt.Errorf("%s %s: HTTP %d %s", method, url, resp.StatusCode, b)
	}
	var out restOrder
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return restOrder{}, resp.StatusCode, err
	}
	return out, resp.StatusCode, nil
}

func (r *restClient) Place(ctx context.Context, requestID string, i int64) (int64, error) {
	user := userOf(i)
	token, err := userToken(r.tokens, user)
	if err != nil {
		return 0, err
	}
	body := fmt.Sprintf(`{"requestId":%q,"userId":%q,"shopId":%q,"deliveryAddress":"1 Teheran-ro, Seoul",`+
		`"items":[{"menuId":"m-1","name":"Bibimbap","quantity":2,"unitPrice":"9000"}]}`, requestID, user, shopOf(i))
	out, _, err := r.do(ctx, token, http.MethodPost, r.command.url()+"/v1/orders", body)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(out.Order.OrderNo, 10, 64)
}

func (r *restClient) change(ctx context.Context, orderNo int64, verb, body string) (int64, error) {
	token, err := operatorToken(r.tokens)
	if err != nil {
		return 0, err
	}
	out, _, err := r.do(ctx, token, http.MethodPost, fmt.Sprintf("%s/v1/orders/%d:%s", r.command.url(), orderNo, verb), body)
	if err != nil {
		return 0, err
	}
	return out.Order.Version, nil
}

func (r *restClient) Cancel(ctx context.Context, orderNo int64) (int64, error) {
	return r.change(ctx, orderNo, "cancel", `{"reason":"changed my mind"}`)
}

func (r *restClient) Accept(ctx context.Context, orderNo int64) (int64, error) {
	return r.change(ctx, orderNo, "advance", `{"status":"ACCEPTED"}`)
}

func (r *restClient) Read(ctx context.Context, orderNo, minVersion int64) (bool, error) {
	token, err := operatorToken(r.tokens)
	if err != nil {
		return false, err
	}
	out, code, err := r.do(ctx, token, http.MethodGet, fmt.Sprintf("%s/v1/orders/%d?minVersion=%d", r.query.url(), orderNo, minVersion), "")
	if code == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !out.Stale, nil
}

func (r *restClient) Close() { r.c.CloseIdleConnections() }

type grpcClient struct {
	conns   []*grpc.ClientConn
	tokens  *authclient.Minter
	command orderv1.OrderCommandServiceClient
	query   orderv1.OrderQueryServiceClient
}

// asUser and asOperator are ctx with the caller's token on its calls.
func (g *grpcClient) asUser(ctx context.Context, user string) (context.Context, error) {
	token, err := userToken(g.tokens, user)
	return authclient.OutgoingContext(ctx, token), err
}

func (g *grpcClient) asOperator(ctx context.Context) (context.Context, error) {
	token, err := operatorToken(g.tokens)
	return authclient.OutgoingContext(ctx, token), err
}

func (g *grpcClient) Place(ctx context.Context, requestID string, i int64) (int64, error) {
	user := userOf(i)
	ctx, err := g.asUser(ctx, user)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := g.command.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{
		RequestId: requestID, UserId: user, ShopId: shopOf(i),
		DeliveryAddress: "1 Teheran-ro, Seoul",
		Items:           []*orderv1.OrderItem{{MenuId: "m-1", Name: "Bibimbap", Quantity: 2, UnitPrice: 9000}},
	})
	if err != nil {
		return 0, err
	}
	return resp.GetOrder().GetOrderNo(), nil
}

func (g *grpcClient) Cancel(ctx context.Context, orderNo int64) (int64, error) {
	ctx, err := g.asOperator(ctx)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := g.command.CancelOrder(ctx, &orderv1.CancelOrderRequest{OrderNo: orderNo, Reason: "changed my mind"})
	if err != nil {
		return 0, err
	}
	return int64(resp.GetOrder().GetVersion()), nil
}

func (g *grpcClient) Accept(ctx context.Context, orderNo int64) (int64, error) {
	ctx, err := g.asOperator(ctx)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := g.command.AdvanceOrder(ctx, &orderv1.AdvanceOrderRequest{OrderNo: orderNo, Status: orderv1.Order_ACCEPTED})
	if err != nil {
		return 0, err
	}
	return int64(resp.GetOrder().GetVersion()), nil
}

func (g *grpcClient) Read(ctx context.Context, orderNo, minVersion int64) (bool, error) {
	ctx, err := g.asOperator(ctx)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := g.query.GetOrder(ctx, &orderv1.GetOrderViewRequest{OrderNo: orderNo, MinVersion: int32(minVersion)})
	if status.Code(err) == codes.NotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !resp.GetStale(), nil
}

func (g *grpcClient) Close() {
	for _, c := range g.conns {
		_ = c.Close()
	}
}
