SHELL := /bin/bash
# Anyops. `make run` starts the whole system on its embedded defaults; `make test` runs every
# test on real parts (it installs what a fresh machine lacks, and starts and stops the
# PostgreSQL and Temporal servers the tests need).

GO            ?= go
BIN           := $(CURDIR)/bin
TEMPORAL_CLI  := github.com/temporalio/cli/cmd/temporal
TEMPORAL_VER  := v1.5.1
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
VERSION       ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
GOTESTFLAGS   ?= -count=1 -timeout 30m
RUNFLAGS      ?=

.PHONY: all build run test test-deps test-go test-browser lint bench clean record-histories chaos

all: build

build: $(BIN)/temporal
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN)/anyops ./cmd/anyops
	$(GO) build -o $(BIN)/anyops-sandbox-init ./sandboxd/jail/cmd/sandbox-init

# The Temporal CLI, pinned: v1.5.1 is the newest that `go install` builds (later releases carry
# replace directives). The stamp file re-installs it when the pinned version changes.
$(BIN)/temporal: $(BIN)/.temporal-$(TEMPORAL_VER)
$(BIN)/.temporal-$(TEMPORAL_VER):
	mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install $(TEMPORAL_CLI)@$(TEMPORAL_VER)
	rm -f $(BIN)/.temporal-* && touch $@

# As root dev runs sandboxd, whose console image mmdebstrap builds on the first start.
run: build
	@if [ "$$(id -u)" = 0 ] && ! command -v mmdebstrap >/dev/null; then \
		echo "make run: installing mmdebstrap (it builds the console image on the first start)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null; }; \
	fi
	$(BIN)/anyops dev $(RUNFLAGS)

# What the tests need besides Go, installed as root when missing (Debian packages, web/e2e's
# npm modules); what is still missing fails here, unless SKIP_MISSING=1 runs without it.
test-deps:
	scripts/test-deps.sh

# Every test: the browser tests, then the Go tests, in one report whose closing line
# "N passed, N failed, N skipped" counts both (the browser tests' results come from a file).
test: test-deps
	$(MAKE) --no-print-directory build
	@set -o pipefail; report=$$(mktemp -t anyops-browser-report.XXXXXX); trap 'rm -f "$$report"' EXIT; \
	browser=0; ANYOPS_BROWSER_REPORT=$$report scripts/browser-test.sh || browser=$$?; \
	$(TEST_GO) | $(GO) run ./internal/cmd/testreport "$$report" && exit $$browser

# Go tests: a throw-away PostgreSQL server around them; Temporal dev servers are started by the
# tests from bin/temporal; moto by the contract tests. The report lists every skip with its reason.
TEST_GO = scripts/with-postgres.sh $(GO) test $(GOTESTFLAGS) -json ./...
test-go: test-deps build
	set -o pipefail; $(TEST_GO) | $(GO) run ./internal/cmd/testreport

# Browser tests: headless Debian Chromium driven by playwright-core against `anyops dev`.
test-browser: test-deps build
	scripts/browser-test.sh

# The chaos harness at full size (integration/chaos_test.go): every operation under seeded
# kill -9s and dependency restarts. SEED=N repeats a run; the figures are in .anyops/chaos.txt.
SEED ?=
chaos: build
	mkdir -p .anyops
	ANYOPS_CHAOS=full ANYOPS_CHAOS_SEED=$(SEED) ANYOPS_CHAOS_REPORT=$(CURDIR)/.anyops/chaos.txt \
		$(GO) test -count=1 -timeout 120m ./integration/ -run '^TestChaos$$' -v 2>&1 | tee .anyops/chaos.log | \
		grep --line-buffered -E '^\s*--- |seed [0-9]+|^(ok|FAIL)'; status=$${PIPESTATUS[0]}; \
		cat .anyops/chaos.txt 2>/dev/null; exit $$status

# Rewrites workflows/testdata/histories from real runs on dev servers (docs/workflow-changes.md):
# the tests that call testenv.RecordHistory, with ANYOPS_RECORD_HISTORIES=1.
record-histories: build
	ANYOPS_RECORD_HISTORIES=1 $(GO) test -count=1 ./worker/ -run 'TestRecordHistories'
	ANYOPS_RECORD_HISTORIES=1 $(GO) test -count=1 ./workflows/ -run 'TestConsoleCloseDestroysSandbox|TestFleetSyncReadsRolesFromHostsAndRetags|OnCloudsim$$'
	ANYOPS_RECORD_HISTORIES=1 $(GO) test -count=1 -timeout 20m ./cmd/anyops/ -run 'TestDrillsEndToEnd'
	ANYOPS_RECORD_HISTORIES=1 scripts/with-postgres.sh $(GO) test -count=1 ./integration/ -run 'TestCrashWorkerKilledMidRolloutPatchesEachServerOnce'

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

bench: build
	bench/run.sh

clean:
	rm -rf $(BIN) .anyops
