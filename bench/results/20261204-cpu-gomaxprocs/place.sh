set -u
cd /work/main
export ORDERFLOW_AUTH_PLACE_ORDER_RATE=1000000 ORDERFLOW_AUTH_PLACE_ORDER_BURST=1000000
for v in p2 p1 p2b p1b; do
  g=2; case $v in p1*) g=1;; esac
  mkdir -p /tmp/cpu-ab/place-$v
  echo "== $v GOMAXPROCS=$g $(date +%T)"
  scripts/services down >/dev/null 2>&1
  GOMAXPROCS=$g scripts/services up order-command > /tmp/cpu-ab/place-$v/up.log 2>&1
  /tmp/ab/placebench -topology .state/topology.json -auth-key .state/auth/signing-key.jwk -concurrency 32 -duration 15s -rounds 3 \
    -out /tmp/cpu-ab/place-$v/placebench.json > /tmp/cpu-ab/place-$v/placebench.md 2>/tmp/cpu-ab/place-$v/err
  cat /tmp/cpu-ab/place-$v/placebench.md | grep -i 'rest\|grpc\|raw' | head -6
done
scripts/services up >/dev/null 2>&1
echo done $(date +%T)
