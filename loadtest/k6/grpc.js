// orderflow over gRPC with the project's protos (k6/net/grpc): place (a share
// retried with the same requestId), read-your-writes through the query
// service, advance, cancel.
//
//   k6 run -e SCENARIO=steady -e RATE=500 loadtest/k6/grpc.js
//   k6 run -e TOKENS=$PWD/.state/k6-tokens.json ... grpc.js   (each user and shop with its own token; make k6 does it)
import grpc from 'k6/net/grpc';
import { check } from 'k6';
import { scenario, grpcThresholds as thresholds, requestId, items } from './scenarios.js';
import { users, shops, userToken, shopToken, grpcBearer } from './tokens.js';

// Several instances, comma-separated: each VU keeps its connection to one,
// the VUs spread over them in turn.
const commandAddrs = (__ENV.COMMAND_GRPC || '127.0.0.1:9090').split(',');
const queryAddrs = (__ENV.QUERY_GRPC || '127.0.0.1:9091').split(',');

const command = new grpc.Client();
command.load(['../../proto', '../../proto/third_party'], 'orderflow/order/v1/command_service.proto');
const query = new grpc.Client();
query.load(['../../proto', '../../proto/third_party'], 'orderflow/order/v1/query_service.proto');

export const options = { scenarios: scenario(), thresholds };

let connected = false;

export default function () {
  if (!connected) {
    command.connect(commandAddrs[__VU % commandAddrs.length], { plaintext: true });
    query.connect(queryAddrs[__VU % queryAddrs.length], { plaintext: true });
    connected = true;
  }
  const u = Math.floor(Math.random() * users);
  const s = Math.floor(Math.random() * shops);
  // The user places, reads and cancels its own order; the shop advances it.
  const asUser = grpcBearer(userToken(u));
  const asShop = grpcBearer(shopToken(s));
  const req = {
    request_id: requestId('k6g'), user_id: `user-${u}`,
    shop_id: `shop-${s}`, items: items(), delivery_address: '1 Teheran-ro, Seoul',
  };
  const placed = command.invoke('orderflow.order.v1.OrderCommandService/PlaceOrder', req, { metadata: asUser, tags: { kind: 'write', name: 'place' } });
  if (!check(placed, { 'placed': (r) => r && r.status === grpc.StatusOK })) {
    return;
  }
  const no = placed.message.order.orderNo;
  if (Math.random() < 0.05) {
    const again = command.invoke('orderflow.order.v1.OrderCommandService/PlaceOrder', req, { metadata: asUser, tags: { kind: 'write', name: 'place-retry' } });
    check(again, { 'a retry returns the same order': (r) => r && r.status === grpc.StatusOK && r.message.order.orderNo === no });
  }
  const read = query.invoke('orderflow.order.v1.OrderQueryService/GetOrder', { order_no: no, min_version: 1 }, { metadata: asUser, tags: { kind: 'read', name: 'get' } });
  check(read, { 'readable after placing': (r) => r && r.status === grpc.StatusOK && !r.message.stale });

  const r = Math.random();
  if (r < 0.05) {
    const c = command.invoke('orderflow.order.v1.OrderCommandService/CancelOrder', { order_no: no, reason: 'changed my mind' }, { metadata: asUser, tags: { kind: 'write', name: 'cancel' } });
    check(c, { 'cancelled': (x) => x && x.status === grpc.StatusOK });
  } else if (r < 0.65) {
    const a = command.invoke('orderflow.order.v1.OrderCommandService/AdvanceOrder', { order_no: no, status: 'ACCEPTED' }, { metadata: asShop, tags: { kind: 'write', name: 'advance' } });
    check(a, { 'advanced': (x) => x && x.status === grpc.StatusOK });
  }
}
