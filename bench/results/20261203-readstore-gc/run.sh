#!/usr/bin/env bash
# run.sh NAME "JVM GC FLAGS": restart the read store with the flags, settle,
# 120 s of the day mix at RATE (870) orders/s; gc log, jstat before/after, dayrun json.
set -euo pipefail
name=$1 flags=$2
# Run from the repository root; results go to ${AB_OUT:-/tmp/readstore-gc}/NAME.
out=${AB_OUT:-/tmp/readstore-gc}/$name
mkdir -p "$out"
export ORDERFLOW_AUTH_PLACE_ORDER_RATE=1000000 ORDERFLOW_AUTH_PLACE_ORDER_BURST=1000000
scripts/infra down mongo >/dev/null
READY_TIMEOUT=900s MONGO_JAVA_GC="$flags -Xlog:gc*,gc+phases=debug:file=$out/gc.log:uptime,level,tags" scripts/infra up > "$out/up.log" 2>&1
go run ./loadtest/cmd/settle > "$out/settle.log" 2>&1
pid=$(cat .state/run/mongo.pid 2>/dev/null || pgrep -f MongoWireServer | head -1)
jstat -gc -t "$pid" > "$out/jstat.before"
go run ./loadtest/cmd/dayrun -rate ${RATE:-870} -duration 120s -profile '' -topology .state/topology.json \
  -auth-key .state/auth/signing-key.jwk -out "$out/dayrun.json" > "$out/dayrun.md" 2> "$out/dayrun.err"
jstat -gc -t "$pid" > "$out/jstat.after"
echo "$flags" > "$out/flags"
