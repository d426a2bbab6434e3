#!/usr/bin/env bash
# run.sh NAME "ENV": restart the services with ENV (space-separated
# VAR=value, e.g. ORDERFLOW_PLACE_GROUP_LINGER=0s), settle, WARM (45s) of the
# day run's mix at RATE (1000) orders/s, then DUR (90s) of it measured; the
# group commit's size histogram is read afterwards. From the repository root
# on a running system; DAYRUN is a built ./loadtest/cmd/dayrun, results in
# ${AB_OUT:-/tmp/cpu-ab}/NAME.
set -euo pipefail
name=$1 envs=${2:-}
out=${AB_OUT:-/tmp/cpu-ab}/$name
rm -rf "$out" && mkdir -p "$out"
export ORDERFLOW_AUTH_PLACE_ORDER_RATE=1000000 ORDERFLOW_AUTH_PLACE_ORDER_BURST=1000000
dayrun=${DAYRUN:-/tmp/ab/dayrun}
scripts/services down >/dev/null 2>&1
# shellcheck disable=SC2086
env $envs scripts/services up >"$out/up.log" 2>&1
go run ./loadtest/cmd/settle >"$out/settle.log" 2>&1
"$dayrun" -rate "${RATE:-1000}" -duration "${WARM:-45s}" -profile '' -raw-time 0 -topology .state/topology.json \
  -auth-key .state/auth/signing-key.jwk >"$out/warm.md" 2>&1
"$dayrun" -rate "${RATE:-1000}" -duration "${DUR:-90s}" -profile '' -topology .state/topology.json \
  -auth-key .state/auth/signing-key.jwk -out "$out/dayrun.json" >"$out/dayrun.md" 2>"$out/dayrun.err"
curl -s 127.0.0.1:8080/metrics | grep -E 'orderflow_order_group_size_(sum|count)' >"$out/groups.txt"
echo "services: $envs" >"$out/env"
grep -h 'CPU per order\|orders placed\|PlaceOrder p50\|freshness p50' "$out/dayrun.md"
