# sluice build and test entry points. `make test` is the test command (CI runs it via .ci/run);
# it works from a fresh clone: it installs versitygw and OpenSearch, starts OpenSearch, runs
# go vet and go test with the integration tests required, and always stops OpenSearch.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build
# Each recipe runs in one shell, so the trap and exports in `test` cover the whole recipe.
.ONESHELL:

GO ?= go
# Flags for the full test run. Add -race here once the suite is fast enough for it on 2 cores.
GOTEST_FLAGS ?= -count=1 -timeout 60m
# Packages vetted and tested; narrow it while working: make test PKGS=./internal/esfake/...
PKGS ?= ./...

VERSITYGW_PKG := github.com/versity/versitygw/cmd/versitygw@v1.8.0
# Where `go install` puts binaries: $GOBIN, else the first $GOPATH entry's bin.
GO_BIN_DIR = $(or $(shell $(GO) env GOBIN),$(firstword $(subst :, ,$(shell $(GO) env GOPATH)))/bin)

OPENSEARCH_SH := scripts/opensearch.sh
OPENSEARCH_PORT ?= 9200
export OPENSEARCH_PORT

.PHONY: setup build vet test bench versitygw opensearch-install opensearch-start opensearch-stop

## setup: install every tool and dependency, then build bin/sluice
setup: versitygw opensearch-install
	$(GO) mod download
	$(MAKE) --no-print-directory build

## build: build bin/sluice and its companions bin/sluice-dev and bin/sluice-bench
build:
	$(GO) build -o bin/ ./cmd/sluice ./cmd/sluice-dev ./cmd/sluice-bench

## vet: go vet every package
vet:
	$(GO) vet $(PKGS)

## test: the full suite against real servers (versitygw, OpenSearch)
# The first failing step ends the recipe; the trap stops OpenSearch and keeps that step's status.
test: versitygw opensearch-install
	@export SLUICE_VERSITYGW="$$(command -v versitygw || echo '$(GO_BIN_DIR)/versitygw')"
	export SLUICE_OPENSEARCH_URL="http://127.0.0.1:$(OPENSEARCH_PORT)"
	export SLUICE_REQUIRE_INTEGRATION=1
	echo "go vet $(PKGS)"
	$(GO) vet $(PKGS)
	trap 'rc=$$?; $(OPENSEARCH_SH) stop || echo "make test: stopping OpenSearch failed" >&2; exit $$rc' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	$(OPENSEARCH_SH) start
	# The end-to-end tests kill processes on heartbeat timing: run them after the rest, not
	# beside CPU-heavy packages, so that a starved heartbeat cannot look like a crash.
	unit=$$($(GO) list $(PKGS) | grep -v '/e2e$$' || true)
	e2e=$$($(GO) list $(PKGS) | grep '/e2e$$' || true)
	if [ -n "$$unit" ]; then echo "go test $(GOTEST_FLAGS) (all but e2e)"; $(GO) test $(GOTEST_FLAGS) $$unit; fi
	if [ -n "$$e2e" ]; then echo "go test $(GOTEST_FLAGS) $$e2e"; $(GO) test $(GOTEST_FLAGS) $$e2e; fi

## bench: the end-to-end benchmark (see README)
bench: build
	./bin/sluice bench --compare

## versitygw: install the S3 server used by the integration tests, unless it is there
versitygw:
	@if command -v versitygw >/dev/null || [ -x "$(GO_BIN_DIR)/versitygw" ]; then :; else \
		echo "go install $(VERSITYGW_PKG)"; $(GO) install $(VERSITYGW_PKG); fi

opensearch-install:
	$(OPENSEARCH_SH) install

opensearch-start:
	$(OPENSEARCH_SH) start

opensearch-stop:
	$(OPENSEARCH_SH) stop
