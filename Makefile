# orderflow: the two commands a newcomer needs are `make up` and `make test`.
# `go build ./...` stops at module borders, so targets loop over the
# workspace's modules (listed in go.work).
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

STATE ?= $(CURDIR)/.state
MODULES := $(shell go list -m -f '{{.Dir}}' 2>/dev/null | sed 's|^$(CURDIR)/||')
PACKAGES := $(addsuffix /...,$(addprefix ./,$(MODULES)))
# Load the addresses the local infrastructure listens on, when it is up.
WITH_ENV := set -a; [ -f $(STATE)/infra.env ] && . $(STATE)/infra.env; set +a;

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: up
up: ## Install what is missing, start the infrastructure and every service [CLUSTER=1: three brokers, four shards, two of each service]
	scripts/infra up
	scripts/services up

.PHONY: down
down: ## Stop every service and the infrastructure
	scripts/services down
	scripts/infra down

.PHONY: status
status: ## Show what is running
	scripts/infra status
	scripts/services status

.PHONY: test
# How long `make test` runs each fuzz target with the engine (beyond its
# seed corpus, which the go test run replays); `make fuzz` runs them longer.
TEST_FUZZTIME ?= 10s

test: gen-check vet infra-up ## The whole test suite, against the real local infrastructure
	$(WITH_ENV) go test -count=1 -timeout 20m $(PACKAGES)
	FUZZTIME=$(TEST_FUZZTIME) scripts/fuzz

.PHONY: test-short
test-short: ## Unit tests only (no infrastructure)
	go test -short -count=1 $(PACKAGES)

.PHONY: fuzz
fuzz: infra-up ## Run every Go fuzz target for FUZZTIME each (default 30s; `make test` runs each for TEST_FUZZTIME, 10s), then Schemathesis with SCHEMATHESIS_EXAMPLES (400) [FUZZ=<name part>: only those]
	FUZZTIME=$(or $(FUZZTIME),30s) scripts/fuzz $(FUZZ)
	$(if $(FUZZ),,$(WITH_ENV) ORDERFLOW_SCHEMATHESIS_EXAMPLES=$(or $(SCHEMATHESIS_EXAMPLES),400) go test -count=1 -timeout 60m -run '^TestSchemathesisFindsNoFailure$$' ./tests/)

.PHONY: infra-up
infra-up:
	scripts/infra up

.PHONY: build
build: ## Build every binary into .state/bin
	mkdir -p $(STATE)/bin
	for d in services/*/cmd/*/; do go build -o $(STATE)/bin/$$(basename $$d) ./$$d; done

.PHONY: vet
vet: ## go vet and gofmt over every module
	go vet $(PACKAGES)
	@unformatted=$$(gofmt -l $(MODULES) | grep -v '^shared/gen/' || true); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi

.PHONY: tidy
tidy: ## go mod tidy in every module
	for m in $(MODULES); do (cd $$m && GOWORK=off go mod tidy); done

.PHONY: generate
generate: ## Regenerate Go code and OpenAPI documents from proto/
	scripts/gen-proto

.PHONY: gen-check
gen-check: ## Fail when the committed generated code differs from what proto/ generates, or generation is not reproducible
	scripts/gen-proto
	@if [ -n "$$(git status --porcelain -- shared/gen)" ]; then \
		git status --porcelain -- shared/gen; \
		echo "generated code is stale: run 'make generate' and commit"; exit 1; fi
	scripts/gen-proto reproducible

# The signing key `make up` generates (scripts/services keys); the load
# tools sign their callers' tokens with it.
AUTH_KEY := $(STATE)/auth/signing-key.jwk
K6_TOKENS := $(STATE)/k6-tokens.json

BENCH_OUT ?= bench/results/$(shell date -u +%Y%m%dT%H%M%SZ)
# Expanded once, so every step of `make bench` writes into the same directory.
BENCH_OUT := $(BENCH_OUT)
CONCURRENCY ?= 32

# The benchmarks measure the services, not the per-caller PlaceOrder limit
# (placebench places every order as one user): every service they start
# or restart (their `up` prerequisite restarts the running ones) gets a
# rate and burst no run reaches, so the bucket is consulted on every call
# (its cost stays in the figures) but never refuses. Services started by
# a later plain `make up` get the default limits again.
BENCH_PLACE_ORDER_LIMIT ?= 1000000
BENCH_TARGETS := bench bench-command bench-command-ab bench-relay bench-read bench-readstore bench-rebuild bench-k6 bench-day bench-cpu
$(BENCH_TARGETS): export ORDERFLOW_AUTH_PLACE_ORDER_RATE := $(BENCH_PLACE_ORDER_LIMIT)
$(BENCH_TARGETS): export ORDERFLOW_AUTH_PLACE_ORDER_BURST := $(BENCH_PLACE_ORDER_LIMIT)

.PHONY: bench-command
# The services downstream of order-command stop while it is measured: on one
# machine they would relay and project its orders on the same cores, which the
# raw loop beside it does not pay for. bench-relay and bench-read measure them.
DOWNSTREAM := outbox-relay order-projector order-query

bench-command: up ## PlaceOrder throughput and latency (REST, gRPC) next to the raw write limit
	mkdir -p $(BENCH_OUT)
	scripts/services down $(DOWNSTREAM)
	go run ./loadtest/cmd/placebench -topology $(STATE)/topology.json -auth-key $(AUTH_KEY) -concurrency $(CONCURRENCY) \
		-duration 15s -rounds 3 -out $(BENCH_OUT)/placebench-c$(CONCURRENCY).json | tee $(BENCH_OUT)/placebench-c$(CONCURRENCY).md \
		|| { scripts/services up $(DOWNSTREAM); exit 1; }
	scripts/services up $(DOWNSTREAM)

# The revision bench-command-ab compares the working tree with: the merge-base
# with main (what this branch started from), else the previous commit.
BASE ?= $(shell git merge-base HEAD main 2>/dev/null || git rev-parse HEAD~1)
AB_ROUNDS ?= 5
AB_DURATION ?= 15s

.PHONY: bench-command-ab
# Two order-command builds side by side on their own ports (A = BASE, built
# from git archive; B = the working tree) against scratch databases of the
# same shards, interleaved round by round with the raw limit; each figure is
# a ratio to its own round's raw limit, so drift between runs cancels out.
bench-command-ab: up ## PlaceOrder REST and gRPC, build BASE=<rev> (default: merge-base with main) against the working tree
	mkdir -p $(BENCH_OUT)
	scripts/services down $(DOWNSTREAM)
	go run ./loadtest/cmd/placebench -base $(BASE) -topology $(STATE)/topology.json -concurrency $(CONCURRENCY) \
		-duration $(AB_DURATION) -rounds $(AB_ROUNDS) -logs $(BENCH_OUT) -out $(BENCH_OUT)/placebench-ab-c$(CONCURRENCY).json \
		| tee $(BENCH_OUT)/placebench-ab-c$(CONCURRENCY).md || { scripts/services up $(DOWNSTREAM); exit 1; }
	scripts/services up $(DOWNSTREAM)

.PHONY: bench-auth-cost
# The same build twice (HEAD), A with authentication off, B with it on, both
# sent the same token: the difference is what the token check, the policy
# and the PlaceOrder limiter cost, in throughput and in order-command's CPU
# per order. Commit first: B is the working tree, A the committed HEAD.
bench-auth-cost: up ## What authentication costs per PlaceOrder (REST, gRPC): auth off (A) against on (B)
	mkdir -p $(BENCH_OUT)
	scripts/services down $(DOWNSTREAM)
	go run ./loadtest/cmd/placebench -base HEAD -a-env ORDERFLOW_AUTH_DISABLED=true -topology $(STATE)/topology.json \
		-concurrency $(CONCURRENCY) -duration $(AB_DURATION) -rounds $(AB_ROUNDS) -logs $(BENCH_OUT) \
		-out $(BENCH_OUT)/placebench-auth-cost-c$(CONCURRENCY).json \
		| tee $(BENCH_OUT)/placebench-auth-cost-c$(CONCURRENCY).md || { scripts/services up $(DOWNSTREAM); exit 1; }
	scripts/services up $(DOWNSTREAM)

# Waits until the relay and the projector have worked off what earlier steps
# wrote, so no benchmark measures on cores busy with another's backlog.
.PHONY: settle
settle:
	go run ./loadtest/cmd/settle

.PHONY: bench-relay
bench-relay: up settle ## Relay throughput from a backlog (ours and Watermill's), commit-to-ack at a steady rate, impact on writers
	mkdir -p $(BENCH_OUT)
	go run ./loadtest/cmd/relaybench -topology $(STATE)/topology.json -out $(BENCH_OUT)/relaybench.json | tee $(BENCH_OUT)/relaybench.md

# The freshness probe reads back every FRESH_READ_EVERY-th order; the second
# run reads back every order, which adds a read per order to the load.
FRESH_READ_EVERY ?= 10

.PHONY: bench-read
bench-read: up settle ## Freshness (PlaceOrder response to visible in the query API) at 200/500/1000 orders/s; projector backlog rate
	mkdir -p $(BENCH_OUT)
	go run ./loadtest/cmd/freshbench -read-every $(FRESH_READ_EVERY) -topology $(STATE)/topology.json -auth-key $(AUTH_KEY) \
		-out $(BENCH_OUT)/freshbench.json | tee $(BENCH_OUT)/freshbench.md
	go run ./loadtest/cmd/settle
	go run ./loadtest/cmd/freshbench -read-every 1 -backlog=false -auth-key $(AUTH_KEY) \
		-out $(BENCH_OUT)/freshbench-every-order.json | tee $(BENCH_OUT)/freshbench-every-order.md

# The read store's durability cost, in one run: the MongoDB stand-in is
# restarted on the heap (MONGO_BACKEND=memory), in an H2 file (h2) and on the
# heap with its journal (journal, the default, where it stays), and each time freshness at 1,000 orders/s and the
# projector's backlog rate are measured next to the raw write limit.
READSTORE_RATE ?= 1000

.PHONY: bench-readstore
bench-readstore: up ## Durability cost of the read store: freshness and projector backlog rate, in memory against on disk
	mkdir -p $(BENCH_OUT)
	for b in memory h2 journal; do \
		scripts/infra down mongo && MONGO_BACKEND=$$b scripts/infra up && \
		scripts/services down order-projector order-query && scripts/services up order-projector order-query && \
		go run ./loadtest/cmd/settle && \
		go run ./loadtest/cmd/freshbench -rates $(READSTORE_RATE) -read-every $(FRESH_READ_EVERY) -backlog-events 100000 -auth-key $(AUTH_KEY) \
			-topology $(STATE)/topology.json -out $(BENCH_OUT)/readstore-$$b.json | tee $(BENCH_OUT)/readstore-$$b.md || exit 1; \
	done
	$(MAKE) --no-print-directory bench-rebuild BENCH_OUT=$(BENCH_OUT)

# orderctl readmodel rebuild without a rate limit, from the shards into an
# empty database (every document written, none current), its external
# events to a scratch topic: documents per second, to compare with the
# projector's backlog rate that bench-readstore measured just before.
REBUILD_SINCE ?= 2h

.PHONY: bench-rebuild
bench-rebuild: up ## The read-model rebuild rate (documents/s) from the shards, unthrottled
	mkdir -p $(BENCH_OUT)
	$(WITH_ENV) db=rebuild_bench_$$(date +%s); topic=bench.rebuild.external.$$(date +%s); \
		$(STATE)/bin/orderctl kafka create-topics --brokers "$$ORDERFLOW_KAFKA_BROKERS" --partitions 12 $$topic && \
		$(STATE)/bin/orderctl readmodel rebuild --since $(REBUILD_SINCE) --rate 0 --mongo-database $$db --external-topic $$topic \
			| tee $(BENCH_OUT)/rebuild.txt

# Helm reads no file outside the chart, so the chart carries a copy of the
# alert rules; tests/helm_test.go fails when it differs from the original.
HELM_CHART := deploy/helm/orderflow

.PHONY: helm-rules
helm-rules: ## Copy deploy/prometheus/rules into the Helm chart (its PrometheusRules)
	rm -f $(HELM_CHART)/files/rules/*.yml
	cp deploy/prometheus/rules/*.yml $(HELM_CHART)/files/rules/

.PHONY: helm-lint
helm-lint: ## helm lint and helm template over every values file in the chart's ci/ (fail-*.yaml must be refused)
	for f in $(HELM_CHART)/ci/*.yaml; do \
		scripts/helm lint --strict $(HELM_CHART) -f $$f; \
		case $$(basename $$f) in \
			fail-*) if scripts/helm template orderflow $(HELM_CHART) -f $$f >/dev/null; then echo "$$f: rendered, want it refused"; exit 1; fi ;; \
			*) scripts/helm template orderflow $(HELM_CHART) -f $$f >/dev/null ;; \
		esac; \
	done

SCENARIO ?= smoke
SCRIPT ?= rest

# The k6 scripts call as each of their users and shops, with the tokens of
# this file (signed with the running system's key).
.PHONY: k6-tokens
k6-tokens: ## Write the k6 scripts' tokens (one per user and shop) to .state/k6-tokens.json
	go run ./loadtest/cmd/tokens -auth-key $(AUTH_KEY) -out $(K6_TOKENS)

.PHONY: k6
k6: k6-tokens ## Run a k6 scenario against the running system: make k6 SCRIPT=rest|grpc SCENARIO=smoke|steady|step|lunch [RATE=.. PEAK=..]
	cd loadtest/k6 && ../../scripts/k6 run -e SCENARIO=$(SCENARIO) -e TOKENS=$(K6_TOKENS) $(if $(RATE),-e RATE=$(RATE)) $(if $(PEAK),-e PEAK=$(PEAK)) $(SCRIPT).js

# 1,000/s is the rate of the CPU budget and of the recorded hour run (3
# million orders in 50 minutes, docs/performance.md); the day needs 833/s.
DAY_RATE ?= 1000
DAY_DURATION ?= 10m
# DAY_ORDERS=3000000 places exactly that many orders at DAY_RATE (the whole
# day: 50 minutes at 1,000/s) instead of running for DAY_DURATION.
DAY_ORDERS ?=
# The day starts on a warm system, as a real one does before its peak: first
# DAY_WARMUP of the same load (its own report, day-warmup.md; its orders are
# verified too but not counted in the day), then settle. On JVMs that Kafka
# and the read store had just started, the first seconds' freshness p99 was
# 1-2 s; on JVMs that had run before, 0.2-0.4 s (docs/performance.md,
# 2026-12-03). DAY_WARMUP=0 starts the day cold.
DAY_WARMUP ?= 30s

# warm_up RATE,DURATION,OUT: DURATION of the day run's mix at RATE orders/s
# (its report in OUT.md and OUT.json), then settle; nothing for 0. The day
# run and the CPU budget both start warm this way.
warm_up = $(if $(filter-out 0 0s,$(2)),go run ./loadtest/cmd/dayrun -rate $(1) -duration $(2) -raw-time 0 -profile '' \
	-topology $(STATE)/topology.json -auth-key $(AUTH_KEY) -out $(3).json > $(3).md && go run ./loadtest/cmd/settle)

.PHONY: bench-day
bench-day: up settle ## Day in an hour: DAY_WARMUP of warm-up, then DAY_RATE orders/s for DAY_DURATION (or DAY_ORDERS orders), then verify every order's document is final
	mkdir -p $(BENCH_OUT)
	$(call warm_up,$(DAY_RATE),$(DAY_WARMUP),$(BENCH_OUT)/day-warmup)
	go run ./loadtest/cmd/dayrun -rate $(DAY_RATE) -duration $(DAY_DURATION) $(if $(DAY_ORDERS),-orders $(DAY_ORDERS)) \
		-topology $(STATE)/topology.json -auth-key $(AUTH_KEY) -out $(BENCH_OUT)/dayrun.json | tee $(BENCH_OUT)/dayrun.md

# The CPU budget: the day run's mix at CPU_RATE orders/s for CPU_DURATION,
# and the CPU every process of the machine used per order (issue: at most
# 1.4 ms at 1,000/s), without the CPU profiles the day run takes.
CPU_RATE ?= 1000
CPU_DURATION ?= 2m
# As the day run does: the budget is the steady state's, and JVMs just
# started (Kafka, the read store) compile their hot code first, at about
# twice their steady CPU per order. CPU_WARMUP=0 measures from cold.
CPU_WARMUP ?= 30s

.PHONY: bench-cpu
bench-cpu: up settle ## CPU per order of every process at CPU_RATE orders/s with the day run's mix, after CPU_WARMUP (30s) of it
	mkdir -p $(BENCH_OUT)
	$(call warm_up,$(CPU_RATE),$(CPU_WARMUP),$(BENCH_OUT)/cpu-warmup)
	go run ./loadtest/cmd/dayrun -rate $(CPU_RATE) -duration $(CPU_DURATION) -profile '' \
		-topology $(STATE)/topology.json -auth-key $(AUTH_KEY) -out $(BENCH_OUT)/cpu-budget.json | tee $(BENCH_OUT)/cpu-budget.md

K6_RATE ?= 100
K6_DURATION ?= 1m

# k6 exits non-zero when a threshold is crossed; the report names which, so
# the other benchmarks still run.
.PHONY: bench-k6
bench-k6: up settle k6-tokens ## The k6 steady scenario over REST and gRPC at K6_RATE iterations/s, summaries for the report
	mkdir -p $(BENCH_OUT)
	for s in rest grpc; do \
		(cd loadtest/k6 && ../../scripts/k6 run -q -e SCENARIO=steady -e RATE=$(K6_RATE) -e DURATION=$(K6_DURATION) -e TOKENS=$(K6_TOKENS) \
			--summary-trend-stats 'med,p(99),count' --summary-export $(abspath $(BENCH_OUT))/k6-$$s-steady.json $$s.js) \
			|| echo "k6 $$s: thresholds crossed (named in the report)"; \
	done

.PHONY: bench
bench: up ## Every benchmark into one bench/results/<timestamp>/ with summary.md and charts
	for c in 16 32 64; do $(MAKE) --no-print-directory bench-command CONCURRENCY=$$c BENCH_OUT=$(BENCH_OUT); done
	$(MAKE) --no-print-directory bench-relay BENCH_OUT=$(BENCH_OUT)
	$(MAKE) --no-print-directory bench-read BENCH_OUT=$(BENCH_OUT)
	$(MAKE) --no-print-directory bench-k6 BENCH_OUT=$(BENCH_OUT)
	$(MAKE) --no-print-directory bench-day BENCH_OUT=$(BENCH_OUT)
	go run ./loadtest/cmd/benchreport -dir $(BENCH_OUT)
	@echo "report: $(BENCH_OUT)/summary.md"

# CLUSTER=1: the private system has the cluster topology (three KRaft
# brokers, four shards, two instances of every service) and the schedule
# kills the active controller's broker and one instance of each service; its
# load is lower, for the two cores the extra processes share.
CHAOS_CLUSTER := $(if $(filter 1 true yes,$(CLUSTER)),-cluster)
CHAOS_RATE ?= $(if $(CHAOS_CLUSTER),30,60)
CHAOS_DURATION ?= 30s
CHAOS_FAULTS ?= all
CHAOS_OUT ?= $(STATE)/chaos/report.json
# Where the Kafka and read-store libraries already fetched are copied from.
CHAOS_SEED ?= $(STATE)

# A private system in $(STATE)/chaos on free ports: the shared infrastructure
# and services keep running untouched. Exits non-zero when an order was lost.
.PHONY: chaos
chaos: ## Fault injection: kill and hang every part under load, then prove no confirmed order was lost [CLUSTER=1 CHAOS_RATE= CHAOS_DURATION= CHAOS_FAULTS=]
	go run ./loadtest/cmd/chaos $(CHAOS_CLUSTER) -state $(STATE)/chaos -seed-libs $(CHAOS_SEED) -rate $(CHAOS_RATE) \
		-duration $(CHAOS_DURATION) -faults $(CHAOS_FAULTS) -out $(CHAOS_OUT)

.PHONY: chaos-short
chaos-short: ## The short fault schedule (kills only, short down times), as make test runs it [CLUSTER=1 CHAOS_RATE=]
	go run ./loadtest/cmd/chaos $(CHAOS_CLUSTER) -short -state $(STATE)/chaos -seed-libs $(CHAOS_SEED) -rate $(CHAOS_RATE) \
		-out $(CHAOS_OUT)
