// orderflow over gRPC with the project's protos (k6/net/grpc): place (a share
// retried with the same requestId), read-your-writes through the query
// service, advance, cancel.
//
//   k6 run -e SCENARIO=steady -e RATE=500 loadtest/k6/grpc.js
import grpc from 'k6/net/grpc';
import { check } from 'k6';
import { scenario, grpcThresholds as thresholds, requestId, items } from './scenarios.js';

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
  const req = {
    request_id: requestId('k6g'), user_id: `user-${Math.floor(Math.random() * 5000)}`,
    shop_id: `shop-${Math.floor(Math.random() * 300)}`, items: items(), delivery_address: '1 Teheran-ro, Seoul',
  };
  const placed = command.invoke('orderflow.order.v1.OrderCommandService/PlaceOrder', req, { tags: { kind: 'write', name: 'place' } });
  if (!check(placed, { 'placed': (r) => r && r.status === grpc.StatusOK })) {
    return;
  }
  const no = placed.message.order.orderNo;
  if (Math.random() < 0.05) {
    const again = command.invoke('orderflow.order.v1.OrderCommandService/PlaceOrder', req, { tags: { kind: 'write', name: 'place-retry' } });
    check(again, { 'a retry returns the same order': (r) => r && r.status === grpc.StatusOK && r.message.order.orderNo === no });
  }
  const read = query.invoke('orderflow.order.v1.OrderQueryService/GetOrder', { order_no: no, min_version: 1 }, { tags: { kind: 'read', name: 'get' } });
  check(read, { 'readable after placing': (r) => r && r.status === grpc.StatusOK && !r.message.stale });

  const r = Math.random();
  if (r < 0.05) {
    const c = command.invoke('orderflow.order.v1.OrderCommandService/CancelOrder', { order_no: no, reason: 'changed my mind' }, { tags: { kind: 'write', name: 'cancel' } });
    check(c, { 'cancelled': (x) => x && x.status === grpc.StatusOK });
  } else if (r < 0.65) {
    const a = command.invoke('orderflow.order.v1.OrderCommandService/AdvanceOrder', { order_no: no, status: 'ACCEPTED' }, { tags: { kind: 'write', name: 'advance' } });
    check(a, { 'advanced': (x) => x && x.status === grpc.StatusOK });
  }
}
