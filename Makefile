# tapir: see README.md. Every target installs what it needs.
SHELL := /bin/bash
GO ?= go
BIN := bin
PCAPS ?= $(abspath ../shared/pcaps)
export TAPIR_PCAPS ?= $(PCAPS)

BINARIES := $(BIN)/tapir-sensor $(BIN)/tapir-collector $(BIN)/tapir

.PHONY: all build deps test test-unit bench demo generate check-generate fmt vet clean

all: build

deps:
	@./deploy/install-deps.sh

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./sensor/cmd/tapir-sensor ./collector/cmd/tapir-collector ./collector/cmd/tapir

# make test: installs test dependencies, starts the services the tests use,
# and runs every test. Tests that need root, a tool or a service fail
# (instead of skipping) because TAPIR_REQUIRE_ALL=1.
test: deps build
	$(GO) vet ./...
	TAPIR_REQUIRE_ALL=1 $(GO) test -count=1 -timeout 40m ./...

# Quick local run: tests skip what is missing.
test-unit:
	$(GO) test ./...

bench: deps build
	./bench/run.sh

demo: deps build
	./deploy/demo.sh

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
