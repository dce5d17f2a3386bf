# The README's commands. `make test` is what CI runs.
GO ?= go

.PHONY: test test-short fmt vet lint bench quickstart

test:
	$(GO) test -race -count=1 -timeout 25m ./...

test-short:
	$(GO) test -short -count=1 ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./benchmarks/

quickstart:
	$(GO) run ./cmd/runner run examples/quickstart.yaml
