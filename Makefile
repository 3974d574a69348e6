# sluice build and test entry points. `make test` is the test command (CI runs it via .ci/run);
# it works from a fresh clone: it installs versitygw, OpenSearch and Elasticsearch, starts the
# three search nodes (OpenSearch, Elasticsearch plain and secured; scripts/engines.sh) in parallel,
# runs go vet and go test with the integration tests required, and always stops the nodes.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build
# Each recipe runs in one shell, so the trap and exports in `test` cover the whole recipe.
.ONESHELL:

GO ?= go
# Flags for the full test run.
GOTEST_FLAGS ?= -count=1 -timeout 60m
# The engine, the activities and the workflows run a second time under the race detector, with
# -short (which skips the million-object workflow test and the fault table, both run above).
RACE_PKGS ?= ./ingest/... ./activities/... ./workflows/...
RACE_FLAGS ?= -race -short -count=1 -timeout 30m
# Packages vetted and tested; narrow it while working: make test PKGS=./internal/esfake/...
PKGS ?= ./...
# How long `make fuzz` (and so `make test`) runs each fuzz target; FUZZTIME=0 skips fuzzing.
FUZZTIME ?= 5s
# The fuzz targets, as package:Target (go test -fuzz takes one target of one package at a time).
FUZZ_TARGETS := ./ingest:FuzzRanges ./ingest:FuzzDecoders ./ingest:FuzzCompressedDecoders \
	./ingest/es:FuzzBulkResponse ./ingest/s3source:FuzzParseURI ./ingest/s3source:FuzzParseContentRange \
	./ingest:FuzzLetters ./internal/esfake:FuzzBulk ./internal/units:FuzzParseBytes

VERSITYGW_PKG := github.com/versity/versitygw/cmd/versitygw@v1.8.0
# Where `go install` puts binaries: $GOBIN, else the first $GOPATH entry's bin.
GO_BIN_DIR = $(or $(shell $(GO) env GOBIN),$(firstword $(subst :, ,$(shell $(GO) env GOPATH)))/bin)

ENGINES_SH := scripts/engines.sh
OPENSEARCH_SH := scripts/opensearch.sh
OPENSEARCH_PORT ?= 9200
ELASTICSEARCH_PORT ?= 9201
ELASTICSEARCH_TLS_PORT ?= 9202
export OPENSEARCH_PORT ELASTICSEARCH_PORT ELASTICSEARCH_TLS_PORT

.PHONY: setup build vet test fuzz bench versitygw engines-install engines-start engines-stop engines-env
.PHONY: opensearch-install opensearch-start opensearch-stop

## setup: install every tool and dependency, then build bin/sluice
setup: versitygw engines-install
	$(GO) mod download
	$(MAKE) --no-print-directory build

## build: build bin/sluice and its companions bin/sluice-dev and bin/sluice-bench
build:
	$(GO) build -o bin/ ./cmd/sluice ./cmd/sluice-dev ./cmd/sluice-bench

## vet: go vet every package
vet:
	$(GO) vet $(PKGS)

## test: the full suite against real servers (versitygw, OpenSearch, Elasticsearch plain and secured)
# The first failing step ends the recipe; the trap stops the nodes and keeps that step's status.
# engines.sh start prints the SLUICE_OPENSEARCH_URL, SLUICE_ELASTICSEARCH_* lines the tests read.
test: versitygw engines-install
	@export SLUICE_VERSITYGW="$$(command -v versitygw || echo '$(GO_BIN_DIR)/versitygw')"
	export SLUICE_REQUIRE_INTEGRATION=1
	echo "go vet $(PKGS)"
	$(GO) vet $(PKGS)
	trap 'rc=$$?; $(ENGINES_SH) stop || echo "make test: stopping the search nodes failed" >&2; exit $$rc' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	engines_env="$$($(ENGINES_SH) start)"
	eval "$$engines_env"
	# The end-to-end tests kill processes on heartbeat timing: run them after the rest, not
	# beside CPU-heavy packages, so that a starved heartbeat cannot look like a crash.
	unit=$$($(GO) list $(PKGS) | grep -v '/e2e$$' || true)
	e2e=$$($(GO) list $(PKGS) | grep '/e2e$$' || true)
	if [ -n "$$unit" ]; then echo "go test $(GOTEST_FLAGS) (all but e2e)"; $(GO) test $(GOTEST_FLAGS) $$unit; fi
	if [ -n "$(RACE_PKGS)" ]; then echo "go test $(RACE_FLAGS) $(RACE_PKGS)"; $(GO) test $(RACE_FLAGS) $(RACE_PKGS); fi
	if [ -n "$$e2e" ]; then echo "go test $(GOTEST_FLAGS) $$e2e"; $(GO) test $(GOTEST_FLAGS) $$e2e; fi
	$(MAKE) --no-print-directory fuzz

## fuzz: run each fuzz target for FUZZTIME (default 5s; the seed corpora also run in go test)
fuzz:
	@if [ "$(FUZZTIME)" = 0 ]; then exit 0; fi
	for t in $(FUZZ_TARGETS); do
		pkg=$${t%%:*}; name=$${t##*:}
		echo "go test -run '^$$' -fuzz '^$$name\$$' -fuzztime $(FUZZTIME) $$pkg"
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg
	done

## demo: the main job end to end (OpenSearch or ELASTICSEARCH_URL, S3 with sample data, sluice dev, ingest); see scripts/demo.sh
.PHONY: demo
demo: build
	scripts/demo.sh

## bench: the end-to-end benchmark (see README)
bench: build
	./bin/sluice bench --compare

## versitygw: install the S3 server used by the integration tests, unless it is there
versitygw:
	@if command -v versitygw >/dev/null || [ -x "$(GO_BIN_DIR)/versitygw" ]; then :; else \
		echo "go install $(VERSITYGW_PKG)"; $(GO) install $(VERSITYGW_PKG); fi

## engines-install: install OpenSearch 2.19 and Elasticsearch 8.19 (Maven Central, cached)
engines-install:
	$(ENGINES_SH) install

## engines-start: start the three search nodes by hand (prints their export lines, as engines-env does)
engines-start:
	$(ENGINES_SH) start

## engines-stop: stop them and remove their data
engines-stop:
	$(ENGINES_SH) stop

## engines-env: print the export lines for the running nodes
engines-env:
	@$(ENGINES_SH) env

opensearch-install:
	$(OPENSEARCH_SH) install

opensearch-start:
	$(OPENSEARCH_SH) start

opensearch-stop:
	$(OPENSEARCH_SH) stop
