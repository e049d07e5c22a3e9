# Ztream's build and test entry points. `make test` is the one command that
# runs every test (CI calls it through .ci/run); it installs what is missing.

GO       ?= go
GOFLAGS  ?=
PKGS     := ./...

.PHONY: all build run test deps check gotest webtest bench fuzz clean

all: build

build:
	$(GO) build -o bin/ztream ./cmd/ztream

run:
	$(GO) run ./cmd/ztream serve

## test: everything — formatting, vet, Go tests with the race detector, web unit and browser tests.
test: deps check gotest webtest

deps:
	./scripts/install-deps.sh

check:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)

# mongostore runs without the race detector: its embedded FerretDB backend is
# too slow under -race (driver timeouts); its concurrency is the driver's.
gotest:
	$(GO) test -race -timeout 40m $$($(GO) list ./... | grep -v /mongostore$$)
	$(GO) test -timeout 20m ./mongostore/

## bench: measure the hub (~8 min) and rewrite docs/BENCHMARKS.md; not part of `make test`.
bench:
	$(GO) run ./bench

webtest:
	node --test web/test/unit/
	./web/test/run-e2e.sh

## fuzz: a short run of every fuzz target (not part of `make test`).
fuzz:
	$(GO) test ./media/ -run '^$$' -fuzz FuzzFrameParser -fuzztime 60s
	$(GO) test ./media/ -run '^$$' -fuzz FuzzTagSkipper -fuzztime 60s

clean:
	rm -rf bin
