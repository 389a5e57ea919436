# b2jet — every target needs only Go (modules come from the Go module proxy).
GO        ?= go
BIN       ?= bin/b2jet
FUZZTIME  ?= 30000x
BENCHTIME ?= 1x
STATICCHECK_VERSION ?= v0.8.2

.PHONY: all run build test test-race vet fuzz bench chaos lint clean

all: lint test build

## run: the worker on an embedded NATS server (and the sandbox B2 fake when no B2 key is set)
run: build
	exec ./$(BIN) worker

## build: the b2jet binary in bin/
build:
	$(GO) build -trimpath -o $(BIN) ./cmd/b2jet

## test: vet, race-enabled tests, then every fuzz target for FUZZTIME each
test: vet test-race fuzz

vet:
	$(GO) vet ./...

test-race:
	$(GO) test -race -count=1 -timeout 15m ./...

fuzz:
	./.ci/fuzz.sh $(FUZZTIME)

## bench: the benchmarks (see BENCHMARKS.md for how to read them)
bench:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -timeout 30m ./...

## chaos: the fault-injection suite at full size (real worker, nats-server and fake B2 processes);
## `make test` runs the short version of every scenario
chaos:
	@mkdir -p bin
	$(GO) test -count=1 -timeout 60m ./cmd/b2jet-chaos -args -chaos.full -chaos.summary $(CURDIR)/bin/chaos-summary.md
	@cat bin/chaos-summary.md

## lint: gofmt, vet and staticcheck (fetched through the Go module proxy)
lint: vet
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

clean:
	rm -rf bin .data
	$(GO) clean -testcache
