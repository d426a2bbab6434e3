// Bearer tokens for the scripts: with -e TOKENS=<file> (written by
// `go run ./loadtest/cmd/tokens`, as `make k6` does), user-i calls with
// the token at users[i] and shop-j with shops[j], so every simulated user
// has its own identity and PlaceOrder limit; without it no token is sent,
// for a system with authentication off. The file is read once and shared
// by every VU (SharedArray), not copied into each.
import { SharedArray } from 'k6/data';

const file = __ENV.TOKENS || '';
const load = (part) => new SharedArray(`tokens-${part}`, () => {
  const all = JSON.parse(open(file));
  return part === 'operator' ? [all.operator] : all[part];
});
const userTokens = file ? load('users') : [];
const shopTokens = file ? load('shops') : [];

// How many users and shops the scripts pick from: as many as have tokens.
export const users = file ? userTokens.length : 5000;
export const shops = file ? shopTokens.length : 300;

export function userToken(i) {
  return file ? userTokens[i] : '';
}

export function shopToken(i) {
  return file ? shopTokens[i] : '';
}

// bearer is the Authorization header of a token (none for '').
export function bearer(token) {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// grpcBearer is the same as gRPC metadata.
export function grpcBearer(token) {
  return token ? { authorization: `Bearer ${token}` } : {};
}
