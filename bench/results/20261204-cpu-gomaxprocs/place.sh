#!/usr/bin/env bash
# place.sh: placebench (32 clients, 15 s x 3 rounds) against order-command
# alone, on two Ps and on one, interleaved. From the repository root on a
# running system; PLACEBENCH is a built ./loadtest/cmd/placebench, results
# in ${AB_OUT:-/tmp/cpu-ab}/place-NAME.
set -euo pipefail
out=${AB_OUT:-/tmp/cpu-ab}
export ORDERFLOW_AUTH_PLACE_ORDER_RATE=1000000 ORDERFLOW_AUTH_PLACE_ORDER_BURST=1000000
for v in p2 p1 p2b p1b; do
  g=2; case $v in p1*) g=1;; esac
  mkdir -p $out/place-$v
  echo "== $v GOMAXPROCS=$g $(date +%T)"
  scripts/services down >/dev/null 2>&1
  GOMAXPROCS=$g scripts/services up order-command > $out/place-$v/up.log 2>&1
  "${PLACEBENCH:-/tmp/ab/placebench}" -topology .state/topology.json -auth-key .state/auth/signing-key.jwk -concurrency 32 -duration 15s -rounds 3 \
    -out $out/place-$v/placebench.json > $out/place-$v/placebench.md 2>$out/place-$v/err
  grep -i 'rest\|grpc\|raw' "$out/place-$v/placebench.md" | head -6
done
scripts/services up >/dev/null 2>&1
echo done $(date +%T)
