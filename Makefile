# mfaflow — see README.md.
GO            ?= go
BIN           := $(CURDIR)/bin
# Keep in step with internal/harness.MinIOVersion.
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
FUZZTIME      ?= 10s
TEST_TIMEOUT  ?= 45m

.PHONY: histories dev build test test-go fuzz-short fuzz lint bench deps clean

## dev: run everything embedded (Temporal, S3, SQLite, worker, API) in one process
dev:
	$(GO) run ./cmd/mfaflow dev

build:
	$(GO) build -o $(BIN)/mfaflow ./cmd/mfaflow

## deps: what the tests need on a fresh machine: PostgreSQL binaries, the pinned MinIO server, and the
## Temporal server and its SQL schema tool (go.mod's tools) for the production-topology test
deps: $(BIN)/minio $(BIN)/temporal-server $(BIN)/temporal-sql-tool
	@scripts/test-deps.sh

$(BIN)/minio:
	@echo "building MinIO $(MINIO_VERSION) into $(BIN) (about 5 minutes cold)"
	GOBIN=$(BIN) GOFLAGS= $(GO) install github.com/minio/minio@$(MINIO_VERSION)

## test: lint, every test with the race detector against real servers, then each fuzz target briefly
test: deps lint test-go fuzz-short

# The server module's own binaries, at go.mod's version; rebuilt when go.mod changes (fast once the
# Go build cache is warm, several minutes cold).
$(BIN)/temporal-server: go.mod
	@echo "building the Temporal server (go.temporal.io/server/cmd/server) into $(BIN)"
	$(GO) build -o $@ go.temporal.io/server/cmd/server

$(BIN)/temporal-sql-tool: go.mod
	$(GO) build -o $@ go.temporal.io/server/cmd/tools/sql

test-go:
	MFAFLOW_MINIO_BIN=$(BIN)/minio MFAFLOW_TEMPORAL_SERVER_BIN=$(BIN)/temporal-server \
	MFAFLOW_TEMPORAL_SQL_TOOL_BIN=$(BIN)/temporal-sql-tool $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	# Allocation counts are only meaningful without the race detector.
	$(GO) test -count=1 -run 'TestVerifyAllocs' ./mfa/

fuzz-short:
	@FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

## fuzz: a longer fuzzing run (FUZZTIME=10m make fuzz)
fuzz:
	@FUZZTIME=$${FUZZTIME:-5m} scripts/fuzz.sh

lint:
	$(GO) vet ./...
	$(GO) run ./internal/tools/openapilint api/openapi.yaml
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## bench: Go benchmarks side by side with their baselines; writes BENCHMARKS.md
bench: deps
	@scripts/bench.sh

## histories: record the current workflow versions' histories (workflows/testdata/*_v2.json, documentretention_v1.json) from runs on a real server;
## make test replays every history there, the shipped versions' included
histories:
	$(GO) test -count=1 -run 'TestBindVirtualOnServer|TestUnbindAppealOnServer' ./workflows/ -update

clean:
	rm -rf $(BIN) .cache
