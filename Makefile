# Sluice: make test (the whole suite), make lint, make bench, make build.
SHELL := /bin/bash
GO ?= go
# -race everywhere: the store and workflow code is concurrent by nature.
TEST_FLAGS ?= -race -count=1 -timeout 15m
PKGS := ./...

.PHONY: test lint fmt vet bench sizes tidy dynamodb-local build asl-validate deploy \
	build-ApiFunction build-AuthorizerFunction build-StepsFunction build-ReconcilerFunction

test:
	$(GO) test $(TEST_FLAGS) $(PKGS)

lint: vet
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	cfn-lint template.yaml
	$(MAKE) --no-print-directory asl-validate

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

# Benchmarks measure; tests never assert on timings. Not part of `make test`.
# The Go benchmarks (store, …), then infra/bench on the local stack: API
# latency and its floor (raw DynamoDB Local and Step Functions calls),
# convergence, cost per stop, scale, the reconciler pass at scale (in-memory
# doubles) with the cost per pipeline-month, Lambda cold start and sizes
# (internal/bench, figures in the README). Output and JSON
# results go to the git-ignored bench-results/. Flags:
# make bench BENCH_FLAGS="-scale 200 -skip coldstart" (go run ./infra/bench -h).
BENCH_FLAGS ?=
bench:
	@mkdir -p bench-results
	set -o pipefail; $(GO) test -run '^$$' -bench . -benchtime 2s $(PKGS) | tee bench-results/go-benchmarks.txt
	set -o pipefail; $(GO) run ./infra/bench -out bench-results $(BENCH_FLAGS) | tee bench-results/bench-table.md

# The Lambda smoke test with the linux/arm64 bootstrap size budget (14 MiB):
# cross-compiling every dependency once more is too slow for make test.
sizes:
	SLUICE_SIZE_CHECK=1 $(GO) test -count=1 -v -run TestLambdasUnderRIE ./internal/lambdasmoke/ | grep -E "function|bootstrap|MiB|ok|FAIL|PASS"

tidy:
	$(GO) mod tidy

# Fetch DynamoDB Local (from the npm package amplify-dynamodb-simulator) into .cache/.
dynamodb-local:
	infra/dynamodb-local.sh fetch

# --- Lambdas -----------------------------------------------------------------
# The Lambda functions of template.yaml (functions/<name>, each a Go main
# package). Built as AWS runs them: provided.al2023 on arm64, the binary named
# bootstrap, no RPC mode (lambda.norpc), static, stripped.
LAMBDAS := api authorizer steps reconciler
LAMBDA_BUILD = GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags "-s -w"

# All of them into bin/<name>/bootstrap.
build:
	@set -e; for fn in $(LAMBDAS); do \
		echo "build bin/$$fn/bootstrap"; \
		$(LAMBDA_BUILD) -o bin/$$fn/bootstrap ./functions/$$fn; \
	done

# SAM's makefile builder (Metadata BuildMethod: makefile) runs
# `make build-<LogicalId>` with ARTIFACTS_DIR set; internal/samtemplate checks
# that every function of template.yaml has its target here.
ARTIFACTS_DIR ?= $(error ARTIFACTS_DIR is not set: sam build sets it; use `make build` for local binaries)

build-ApiFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/api

build-AuthorizerFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/authorizer

build-StepsFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/steps

build-ReconcilerFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/reconciler

# --- State machine definitions -----------------------------------------------
# asl-validator, pinned in its own package.json and installed with npm ci into
# the git-ignored node_modules/ beside it (the Go test in internal/samtemplate
# uses the same install, so `make test` validates the ASL too).
ASL_VALIDATOR_DIR := internal/samtemplate/testdata/asl-validator
ASL_VALIDATOR := $(ASL_VALIDATOR_DIR)/node_modules/.bin/asl-validator

$(ASL_VALIDATOR): $(ASL_VALIDATOR_DIR)/package.json $(ASL_VALIDATOR_DIR)/package-lock.json
	npm ci --prefix $(ASL_VALIDATOR_DIR) --no-audit --no-fund
	@touch $@

asl-validate: $(ASL_VALIDATOR)
	$(ASL_VALIDATOR) $(addprefix --json-path ,$(wildcard statemachine/*.asl.json))

# --- Deploy --------------------------------------------------------------------
# Needs the AWS SAM CLI and AWS credentials; see README.md ("Deploy to AWS")
# for the parameters. samconfig.toml holds the defaults.
deploy:
	@echo "Deploy: sam build && sam deploy --guided   (parameters: README.md, Deploy to AWS)"
	@command -v sam >/dev/null || { echo "deploy: the AWS SAM CLI (sam) is not installed; nothing deployed" >&2; exit 1; }
	sam build
	sam deploy --guided

# --- Local stack and CLI ---------------------------------------------------------
# `make run`: the whole control plane on this machine (DynamoDB Local, the local
# Step Functions service, the Lambda endpoint, the API on 127.0.0.1:8080 with
# auth on, the reconciler, the sample runtime); data in .sluice/, Ctrl-C stops
# it all. Flags: make run RUN_FLAGS="--api-addr 127.0.0.1:8081" (see
# `go run ./infra/localstack -h`). Built, then exec'd (not `go run`), so that
# Ctrl-C and SIGTERM reach the launcher itself and it can stop what it started.
RUN_FLAGS ?=
.PHONY: run cli
run:
	$(GO) build -o bin/sluice-local ./infra/localstack
	exec ./bin/sluice-local $(RUN_FLAGS)

# The command-line client: bin/sluice (sluice help).
cli:
	$(GO) build -o bin/sluice ./infra/sluice
