# orgsvc developer tasks. `make help` lists them.
#
# The Dockerfile builds the binary with `make build`, so BUILD below is the
# one place the release build command is written down.

GO     ?= go
BINARY := bin/orgsvc
IMAGE  ?= orgsvc

# The release build: static (no cgo), no local paths, no symbol tables, and
# the commit stamped when the tree is a git checkout (orgsvc version).
BUILD := CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=auto -ldflags "-s -w" -o $(BINARY) ./cmd/orgsvc

# The suite, without the race detector. Measured on 2 cores (another job
# busy on the machine): from an empty build cache 4 to 6 min, against about
# 11 min for test-race plus internal/app; 35 s and 75 s once the cache is
# warm. Extra flags: make test TESTFLAGS=-v.
TESTFLAGS ?=
MODULE    := github.com/orgsvc/orgsvc

# Pinned tools, run through the Go module proxy; nothing to install.
SWAG        := $(GO) run github.com/swaggo/swag/cmd/swag@v1.16.6
SWAG_INIT    = $(SWAG) init --generalInfo server.go --dir ./api --output $(1) --outputTypes go,json,yaml --quiet
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.7.0

.PHONY: help run build test test-race bench chaos docs docs-check lint docker-build clean

help:
	@echo "make run           serve on :8000 (embedded database under ./data when MONGO_URI is empty)"
	@echo "make build         build $(BINARY) (static, as the Docker image does)"
	@echo "make test          run every test"
	@echo "make test-race     run the tests under the race detector (all but internal/app and internal/chaos)"
	@echo "make bench         run the load tool (BENCHFLAGS=-short for a quick run)"
	@echo "make chaos         run the chaos test on $(BINARY): kills, recovery, verification (CHAOSFLAGS=\"-duration 60s\")"
	@echo "make docs          regenerate the OpenAPI documents in docs/"
	@echo "make docs-check    fail when docs/ is not what 'make docs' would write"
	@echo "make lint          gofmt, go vet, staticcheck (the service and bench/)"
	@echo "make docker-build  build the image $(IMAGE)"
	@echo "make clean         remove bin/"

# The built binary, not go run: Ctrl-C and kill reach the service itself.
run: build
	./$(BINARY)

build:
	$(BUILD)

test:
	$(GO) test -count=1 $(TESTFLAGS) ./...

# The race detector (it needs cgo: gcc on the machine) over every package but
# internal/app, whose tests start the whole program at the default bcrypt
# cost (-race slows a hash past the default request timeout), and
# internal/chaos, whose test only drives processes of the built binary.
test-race:
	$(GO) test -count=1 -race -timeout 30m $(TESTFLAGS) $$($(GO) list ./... | grep -vx -e '$(MODULE)/internal/app' -e '$(MODULE)/internal/chaos')

# The load tool (BENCHMARKS.md), a module of its own in bench/ so that its
# load generator and charts stay out of the service's go.mod: starts the
# service on the embedded store, seeds it, and measures every scenario
# against its baseline, writing results.md, results.json and charts to
# bench-results/. It runs from here, where it builds ./cmd/orgsvc. A quick
# run: make bench BENCHFLAGS=-short
BENCHFLAGS ?=
BENCHBIN   := bin/orgbench
bench:
	$(GO) -C bench build -o $(abspath $(BENCHBIN)) .
	./$(BENCHBIN) $(BENCHFLAGS)

# The chaos test (cmd/orgchaos): two instances of the built binary on one
# store, the second killed with kill -9 every 2-6 s and started again
# under a mixed load, then recovery and a check of every acknowledged
# write; it exits 1 on any violation. Defaults: 150 s, 8 clients. Flags:
# make chaos CHAOSFLAGS="-duration 60s -seed 7 -out chaos-logs"
CHAOSFLAGS ?=
chaos: build
	$(GO) run ./cmd/orgchaos -bin $(abspath $(BINARY)) $(CHAOSFLAGS)

docs:
	$(call SWAG_INIT,./docs)

# swag names the generated package after its output directory, so the fresh
# copy goes into a directory called docs as well. docs/benchmarks holds the
# charts of BENCHMARKS.md, written by make bench, not by swag.
docs-check:
	@tmp="$$(mktemp -d)" && trap 'rm -rf "$$tmp"' EXIT && \
	$(call SWAG_INIT,"$$tmp/docs") && \
	if ! diff -ru -x benchmarks docs "$$tmp/docs"; then \
		echo >&2; \
		echo "docs-check: docs/ does not match the swag annotations in api/ (diff above). Run 'make docs' and commit docs/." >&2; \
		exit 1; \
	fi && \
	echo "docs-check: docs/ is up to date"

lint:
	@unformatted="$$(gofmt -l .)" || exit 1; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files are not formatted (run 'gofmt -w .'):" >&2; \
		echo "$$unformatted" >&2; \
		exit 1; \
	fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	$(GO) -C bench vet ./...
	cd bench && $(STATICCHECK) ./...

docker-build:
	docker build -t $(IMAGE) .

clean:
	rm -rf bin/
