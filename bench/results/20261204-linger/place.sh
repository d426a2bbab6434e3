#!/usr/bin/env bash
# place.sh NAME "ENV" CLIENTS: placebench (CLIENTS closed-loop clients, one
# 15 s round of each phase) against order-command alone, started with ENV.
# From the repository root on a running system; PLACEBENCH is a built
# ./loadtest/cmd/placebench, results in ${AB_OUT:-/tmp/cpu-ab}/place-NAME.
set -euo pipefail
name=$1 envs=${2:-} clients=${3:-32}
out=${AB_OUT:-/tmp/cpu-ab}/place-$name
rm -rf "$out" && mkdir -p "$out"
export ORDERFLOW_AUTH_PLACE_ORDER_RATE=1000000 ORDERFLOW_AUTH_PLACE_ORDER_BURST=1000000
scripts/services down >/dev/null 2>&1
# shellcheck disable=SC2086
env $envs scripts/services up order-command >"$out/up.log" 2>&1
"${PLACEBENCH:-/tmp/ab/placebench}" -topology .state/topology.json -auth-key .state/auth/signing-key.jwk -concurrency "$clients" \
  -duration 15s -rounds 1 -out "$out/placebench.json" >"$out/placebench.md" 2>"$out/err"
echo "services: $envs" >"$out/env"
grep 'PlaceOrder\|raw' "$out/placebench.md"
