// Load shapes shared by the REST and gRPC scripts. Pick one with
// -e SCENARIO=smoke|steady|step|lunch; RATE sets the orders per second of
// steady (default 200), PEAK the top of step and lunch (default 1000).
const rate = Number(__ENV.RATE || 200);
const peak = Number(__ENV.PEAK || 1000);

const shapes = {
  // A few iterations to prove the script and the system work end to end.
  smoke: { executor: 'shared-iterations', vus: 2, iterations: 20, maxDuration: '60s' },
  // A fixed arrival rate: throughput and latency at a known load.
  steady: {
    executor: 'constant-arrival-rate', rate, timeUnit: '1s', duration: __ENV.DURATION || '2m',
    preAllocatedVUs: 50, maxVUs: 2000,
  },
  // Steps of 20 % of the peak, one minute each: where is the knee?
  step: {
    executor: 'ramping-arrival-rate', startRate: peak / 5, timeUnit: '1s', preAllocatedVUs: 100, maxVUs: 3000,
    stages: [1, 2, 3, 4, 5].map((i) => ({ target: (peak * i) / 5, duration: '1m' }))
      .flatMap((s) => [{ target: s.target, duration: '10s' }, s]),
  },
  // Lunch: a quiet late morning, a steep climb to the peak at noon, a long
  // plateau, then a slower decline.
  lunch: {
    executor: 'ramping-arrival-rate', startRate: peak / 10, timeUnit: '1s', preAllocatedVUs: 100, maxVUs: 3000,
    stages: [
      { target: peak / 10, duration: '1m' },
      { target: peak / 2, duration: '2m' },
      { target: peak, duration: '1m' },
      { target: peak, duration: '4m' },
      { target: peak / 3, duration: '3m' },
      { target: peak / 10, duration: '1m' },
    ],
  },
};

export function scenario() {
  const name = __ENV.SCENARIO || 'smoke';
  if (!shapes[name]) {
    throw new Error(`unknown SCENARIO ${name}: use ${Object.keys(shapes).join(', ')}`);
  }
  return { [name]: shapes[name] };
}

// Missing these makes k6 exit non-zero. The reads include the
// read-your-writes wait for the projector. P99 sets the latency bound (ms).
const p99 = Number(__ENV.P99 || 500);
export const httpThresholds = {
  checks: ['rate>0.99'],
  http_req_failed: ['rate<0.01'],
  'http_req_duration{kind:write}': [`p(99)<${p99}`],
  'http_req_duration{kind:read}': [`p(99)<${p99 * 2}`],
};
export const grpcThresholds = {
  checks: ['rate>0.99'],
  'grpc_req_duration{kind:write}': [`p(99)<${p99}`],
  'grpc_req_duration{kind:read}': [`p(99)<${p99 * 2}`],
};

// A unique request id: the VU, the iteration and a random part.
export function requestId(prefix) {
  return `${prefix}-${__VU}-${__ITER}-${Math.random().toString(36).slice(2, 10)}`;
}

export function pick(list) {
  return list[Math.floor(Math.random() * list.length)];
}

export const menu = [
  { menuId: 'bibimbap', name: 'Bibimbap', unitPrice: 9000 },
  { menuId: 'tteokbokki', name: 'Tteokbokki', unitPrice: 4500 },
  { menuId: 'chicken', name: 'Fried chicken', unitPrice: 18000 },
  { menuId: 'cola', name: 'Cola', unitPrice: 2000 },
];

export function items() {
  const n = 1 + Math.floor(Math.random() * 3);
  return Array.from({ length: n }, () => {
    const m = pick(menu);
    return { menuId: m.menuId, name: m.name, quantity: 1 + Math.floor(Math.random() * 3), unitPrice: String(m.unitPrice) };
  });
}
