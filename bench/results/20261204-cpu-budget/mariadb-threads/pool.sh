#!/usr/bin/env bash
# MariaDB's thread handling A/B at 1,000/s: one-thread-per-connection (the
# default) against pool-of-threads, 90 s of the day run's mix each.
set -u
# From the repository root; DAYRUN-style helpers as in ../../20261204-cpu-gomaxprocs/run.sh.
export ORDERFLOW_AUTH_PLACE_ORDER_RATE=1000000 ORDERFLOW_AUTH_PLACE_ORDER_BURST=1000000
make up > /tmp/ab/pool-up.log 2>&1 || { echo up failed; exit 1; }
go build -o /tmp/ab/dayrun ./loadtest/cmd/dayrun
# warm the JVMs first
/tmp/ab/dayrun -rate 1000 -duration 60s -raw-time 0 -profile '' -topology .state/topology.json -auth-key .state/auth/signing-key.jwk > /dev/null 2>&1
for v in "tpc|" "pool|--thread-handling=pool-of-threads" "tpc2|" "pool2|--thread-handling=pool-of-threads"; do
  IFS='|' read -r name opts <<<"$v"
  echo "== $name ($opts) $(date +%T)"
  scripts/infra down mysql > /dev/null 2>&1
  MARIADB_OPTS="$opts" scripts/infra up > /tmp/ab/pool-$name-infra.log 2>&1 || echo "infra up failed"
  mysql -h127.0.0.1 -P3307 -uroot -N -e "select @@thread_handling" 2>/dev/null
  AB_OUT=/tmp/cpu-ab/pool /tmp/ab/run.sh "$name" "" || echo "$name failed"
done
echo done $(date +%T)
