# Sluice: make test (the whole suite), make lint, make bench.
SHELL := /bin/bash
GO ?= go
# -race everywhere: the store and workflow code is concurrent by nature.
TEST_FLAGS ?= -race -count=1 -timeout 15m
PKGS := ./...

.PHONY: test lint fmt vet bench tidy dynamodb-local

test:
	$(GO) test $(TEST_FLAGS) $(PKGS)

lint: vet
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	cfn-lint template.yaml

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

# Benchmarks measure; tests never assert on timings. Not part of `make test`.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s $(PKGS)

tidy:
	$(GO) mod tidy

# Fetch DynamoDB Local (from the npm package amplify-dynamodb-simulator) into .cache/.
dynamodb-local:
	infra/dynamodb-local.sh fetch
