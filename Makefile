# Ztream's build and test entry points.
#   make deps   installs what the tests need (Debian and npm packages); run once per machine.
#   make lint   static checks: gofmt, go vet, golangci-lint, tsc over the browser modules.
#   make test   runs every test and installs nothing.
# CI (.ci/run) runs `make deps lint test`.

GO       ?= go
GOFLAGS  ?=
PKGS     := ./...

.PHONY: all build run test deps lint lint-go lint-js gotest webtest bench fuzz clean

all: build

build:
	$(GO) build -o bin/ztream ./cmd/ztream

run:
	$(GO) run ./cmd/ztream serve

## deps: Debian packages (browsers, libavcodec59, pulseaudio, prometheus, lame, sox, ffmpeg) and the web tests' npm packages.
deps:
	./scripts/install-deps.sh

## lint: the lint gate, also run by CI.
lint: lint-go lint-js

lint-go:
	./scripts/lint-go.sh

lint-js:
	./scripts/lint-js.sh

## test: every test — Go tests with the race detector, web unit and browser tests. Installs nothing.
test: gotest webtest

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

## fuzz: a short run of every fuzz target in the repository (not part of `make test`); FUZZTIME=30s to change.
fuzz:
	./scripts/fuzz.sh

clean:
	rm -rf bin
