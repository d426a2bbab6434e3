// orderflow over REST: place (a share retried on purpose with the same
// requestId), read-your-writes through the query service, advance through
// delivery, some cancels, and the user's and shop's lists.
//
//   k6 run -e SCENARIO=steady -e RATE=500 loadtest/k6/rest.js
//   k6 run -e COMMAND_URL=http://127.0.0.1:8080,http://127.0.0.1:8180 -e QUERY_URL=... rest.js   (a cluster)
//   k6 run -e TOKENS=$PWD/.state/k6-tokens.json ... rest.js   (each user and shop with its own token; make k6 does it)
import http from 'k6/http';
import { check } from 'k6';
import { scenario, httpThresholds as thresholds, requestId, items, pick } from './scenarios.js';
import { users, shops, userToken, shopToken, bearer } from './tokens.js';

// Several instances, comma-separated: each iteration takes the next one.
const commands = (__ENV.COMMAND_URL || 'http://127.0.0.1:8080').split(',');
const queries = (__ENV.QUERY_URL || 'http://127.0.0.1:8081').split(',');

export const options = { scenarios: scenario(), thresholds };

// Every call is made by whom it belongs to: the user places, reads, lists
// and cancels its own orders, the shop advances them and lists its own.
function post(url, body, token, kind, name) {
  return http.post(url, JSON.stringify(body), { headers: { 'Content-Type': 'application/json', ...bearer(token) }, tags: { kind, name } });
}

function get(url, token, kind, name) {
  return http.get(url, { headers: bearer(token), tags: { kind, name } });
}

export default function () {
  const command = commands[(__VU + __ITER) % commands.length];
  const query = queries[(__VU + __ITER) % queries.length];
  const u = Math.floor(Math.random() * users);
  const s = Math.floor(Math.random() * shops);
  const user = `user-${u}`;
  const shop = `shop-${s}`;
  const asUser = userToken(u);
  const asShop = shopToken(s);
  const order = { requestId: requestId('k6'), userId: user, shopId: shop, items: items(), deliveryAddress: '1 Teheran-ro, Seoul' };
  const placed = post(`${command}/v1/orders`, order, asUser, 'write', 'place');
  if (!check(placed, { 'placed': (r) => r.status === 200 })) {
    return;
  }
  const no = placed.json('order.orderNo');

  // Retried on purpose: the same requestId must give the same order.
  if (Math.random() < 0.05) {
    const again = post(`${command}/v1/orders`, order, asUser, 'write', 'place-retry');
    check(again, { 'a retry returns the same order': (r) => r.status === 200 && r.json('order.orderNo') === no });
  }

  // Read your write: wait for the projector (server side, 2 s at most).
  const read = get(`${query}/v1/orders/${no}?minVersion=1`, asUser, 'read', 'get');
  check(read, { 'readable after placing': (r) => r.status === 200 && r.json('stale') === false });

  let version = 1;
  const r = Math.random();
  if (r < 0.05) {
    const c = post(`${command}/v1/orders/${no}:cancel`, { reason: 'changed my mind' }, asUser, 'write', 'cancel');
    check(c, { 'cancelled': (x) => x.status === 200 });
    version = 2;
  } else if (r < 0.65) {
    const steps = r < 0.45 ? ['ACCEPTED', 'DELIVERING', 'DELIVERED'] : ['ACCEPTED'];
    for (const status of steps) {
      const a = post(`${command}/v1/orders/${no}:advance`, { status }, asShop, 'write', 'advance');
      if (!check(a, { 'advanced': (x) => x.status === 200 })) {
        return;
      }
      version++;
    }
  }
  if (version > 1 && Math.random() < 0.5) {
    const again = get(`${query}/v1/orders/${no}?minVersion=${version}`, asUser, 'read', 'get-after-change');
    check(again, { 'the change is readable': (x) => x.status === 200 && x.json('stale') === false && x.json('order.version') === version });
  }
  if (Math.random() < 0.2) {
    const list = get(`${query}/v1/users/${user}/orders?pageSize=20`, asUser, 'read', 'user-orders');
    check(list, { 'user list': (x) => x.status === 200 });
  }
  if (Math.random() < 0.1) {
    const status = pick(['', 'PLACED', 'ACCEPTED', 'DELIVERED']);
    const list = get(`${query}/v1/shops/${shop}/orders?pageSize=20${status ? `&status=${status}` : ''}`, asShop, 'read', 'shop-orders');
    check(list, { 'shop list': (x) => x.status === 200 });
  }
}
