# b2jet — every target needs only Go (modules come from the Go module proxy).
GO        ?= go
BIN       ?= bin/b2jet
FUZZTIME  ?= 30000x
BENCHTIME ?= 1x
BENCH_FLAGS ?=
STATICCHECK_VERSION ?= v0.8.2

.PHONY: all run build test test-race browser vet fuzz bench bench-micro chaos lint clean

all: lint test build

## run: the worker on an embedded NATS server (and the sandbox B2 fake when no B2 key is set)
run: build
	exec ./$(BIN) worker

## build: the b2jet binary in bin/
build:
	$(GO) build -trimpath -o $(BIN) ./cmd/b2jet

## test: vet, race-enabled tests, then every fuzz target for FUZZTIME each (installs Chromium for
## the console's browser test when it is missing)
test: vet browser test-race fuzz

## browser: Debian's Chromium, for the console's browser test
browser:
	./.ci/chromium.sh

vet:
	$(GO) vet ./...

test-race:
	$(GO) test -race -count=1 -timeout 15m ./...

fuzz:
	./.ci/fuzz.sh $(FUZZTIME)

## bench: the end-to-end benchmark program (cmd/b2jet-bench, ~10 min; BENCH_FLAGS=-quick for a
## shorter run); it rewrites its section of BENCHMARKS.md
bench:
	$(GO) run ./cmd/b2jet-bench -out BENCHMARKS.md $(BENCH_FLAGS)

## bench-micro: the go test micro-benchmarks (BenchmarkListMillion and others), BENCHTIME each
bench-micro:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -timeout 30m ./...

## chaos: the fault-injection suite at full size (real worker, nats-server and fake B2 processes);
## when every scenario passes it rewrites the table of docs/reliability.md (between its
## chaos-summary markers); `make test` runs the short version of every scenario
chaos:
	@mkdir -p bin
	$(GO) test -count=1 -timeout 60m ./cmd/b2jet-chaos -args -chaos.full -chaos.summary $(CURDIR)/bin/chaos-summary.md \
		-chaos.doc $(CURDIR)/docs/reliability.md
	@cat bin/chaos-summary.md

## lint: gofmt, vet and staticcheck (fetched through the Go module proxy)
lint: vet
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

clean:
	rm -rf bin .data
	$(GO) clean -testcache
