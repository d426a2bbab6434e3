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
up: ## Install what is missing, start the infrastructure and every service
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
test: gen-check vet infra-up ## The whole test suite, against the real local infrastructure
	$(WITH_ENV) go test -count=1 -timeout 20m $(PACKAGES)

.PHONY: test-short
test-short: ## Unit tests only (no infrastructure)
	go test -short -count=1 $(PACKAGES)

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
gen-check: ## Fail when the committed generated code differs from what proto/ generates
	scripts/gen-proto
	@if [ -n "$$(git status --porcelain -- shared/gen)" ]; then \
		git status --porcelain -- shared/gen; \
		echo "generated code is stale: run 'make generate' and commit"; exit 1; fi

BENCH_OUT ?= bench/results/$(shell date -u +%Y%m%dT%H%M%SZ)
CONCURRENCY ?= 32

.PHONY: bench-command
bench-command: up ## PlaceOrder throughput and latency (REST, gRPC) next to the raw write limit
	mkdir -p $(BENCH_OUT)
	go run ./loadtest/cmd/placebench -topology $(STATE)/topology.json -concurrency $(CONCURRENCY) \
		-duration 15s -rounds 3 -out $(BENCH_OUT)/placebench-c$(CONCURRENCY).json | tee $(BENCH_OUT)/placebench-c$(CONCURRENCY).md

.PHONY: bench-relay
bench-relay: up ## Relay throughput from a backlog, commit-to-ack at a steady rate, impact on writers
	mkdir -p $(BENCH_OUT)
	go run ./loadtest/cmd/relaybench -topology $(STATE)/topology.json -out $(BENCH_OUT)/relaybench.json | tee $(BENCH_OUT)/relaybench.md

.PHONY: bench-read
bench-read: up ## Freshness (PlaceOrder response to visible in the query API) at 200/500/1000 orders/s; projector backlog rate
	mkdir -p $(BENCH_OUT)
	go run ./loadtest/cmd/freshbench -topology $(STATE)/topology.json -out $(BENCH_OUT)/freshbench.json | tee $(BENCH_OUT)/freshbench.md

SCENARIO ?= smoke
SCRIPT ?= rest

.PHONY: k6
k6: ## Run a k6 scenario against the running system: make k6 SCRIPT=rest|grpc SCENARIO=smoke|steady|step|lunch [RATE=.. PEAK=..]
	cd loadtest/k6 && ../../scripts/k6 run -e SCENARIO=$(SCENARIO) $(if $(RATE),-e RATE=$(RATE)) $(if $(PEAK),-e PEAK=$(PEAK)) $(SCRIPT).js

.PHONY: bench
bench: up ## Every benchmark into one bench/results/<timestamp>/ with summary.md and charts
	for c in 16 32 64; do $(MAKE) --no-print-directory bench-command CONCURRENCY=$$c BENCH_OUT=$(BENCH_OUT); done
	$(MAKE) --no-print-directory bench-relay BENCH_OUT=$(BENCH_OUT)
	$(MAKE) --no-print-directory bench-read BENCH_OUT=$(BENCH_OUT)
	go run ./loadtest/cmd/benchreport -dir $(BENCH_OUT)
	@echo "report: $(BENCH_OUT)/summary.md"
