#!/usr/bin/env bash
# run.sh NAME "ENV": restart the services with ENV (space-separated
# VAR=value), settle, then DUR (90s) of the day run's mix at RATE (1000)
# orders/s; the load generator runs with LOADENV. From the repository root.
set -euo pipefail
name=$1 envs=${2:-}
out=${AB_OUT:-/tmp/cpu-ab}/$name
mkdir -p "$out"
export ORDERFLOW_AUTH_PLACE_ORDER_RATE=1000000 ORDERFLOW_AUTH_PLACE_ORDER_BURST=1000000
scripts/services down >/dev/null 2>&1
# shellcheck disable=SC2086
env $envs scripts/services up >"$out/up.log" 2>&1
go run ./loadtest/cmd/settle >"$out/settle.log" 2>&1
# shellcheck disable=SC2086
env ${LOADENV:-} "${DAYRUN:-/tmp/ab/dayrun}" -rate "${RATE:-1000}" -duration "${DUR:-90s}" -profile '' -topology .state/topology.json \
  -auth-key .state/auth/signing-key.jwk -out "$out/dayrun.json" >"$out/dayrun.md" 2>"$out/dayrun.err"
printf 'services: %s\nload generator: %s\n' "$envs" "${LOADENV:-}" >"$out/env"
grep -h 'CPU per order\|orders placed\|freshness p50' "$out/dayrun.md"
