# Sluice's developer and CI entry points. `make help` lists the targets.

GO           ?= go
PKGS         ?= ./...
# go test -timeout for `make test`: a hung test fails the run instead of CI's clock.
TEST_TIMEOUT ?= 10m
# How long `make fuzz` runs each fuzz target.
FUZZTIME     ?= 10s
# `make bench-go`: which benchmarks (-bench regexp) and for how long each.
BENCH        ?= .
BENCHTIME    ?= 1s
# Extra flags for the side-by-side harness (`go run ./bench -h` lists them),
# e.g. BENCH_FLAGS='-only get-p16 -gc-keys 0'.
BENCH_FLAGS  ?=
# The image `make docker` builds and `make test-cluster` runs.
IMAGE        ?= sluice:dev
# go test -timeout for `make test-cluster`.
CLUSTER_TEST_TIMEOUT ?= 15m

# Where `go install` puts staticcheck.
GOBIN = $(or $(shell $(GO) env GOBIN),$(firstword $(subst :, ,$(shell $(GO) env GOPATH)))/bin)

.PHONY: help run build test test-deps lint fuzz bench bench-quick bench-go clean docker test-cluster

help:
	@echo 'make run     build and start one node on 127.0.0.1:6379 (admin HTTP on 127.0.0.1:9121)'
	@echo 'make build   build bin/sluice'
	@echo 'make test    install missing test tools (Debian: redis-server, redis-tools, gcc), go vet, go test -race'
	@echo 'make lint    gofmt, go vet, staticcheck'
	@echo 'make fuzz    run every fuzz target for FUZZTIME (default $(FUZZTIME))'
	@echo 'make bench   Sluice and Redis side by side (about 6 min): writes bench/results/latest.md and .svg'
	@echo 'make bench-quick  a one-minute smoke test of the same: bench/results/quick.md'
	@echo 'make bench-go     go test -bench with -benchmem (BENCH=regexp, BENCHTIME=$(BENCHTIME))'
	@echo 'make docker  build a static bin/docker/sluice and the image $(IMAGE) (Dockerfile, FROM scratch)'
	@echo 'make test-cluster  make docker, then fault tests on three containers (test/docker): kill, restart, partition'
	@echo 'make clean   remove bin/'

build:
	$(GO) build -o bin/sluice ./cmd/sluice

run: build
	./bin/sluice

# The tests compare Sluice's replies with redis-server's and drive it with
# redis-cli and redis-benchmark, and -race needs cgo, so a C compiler. Where
# they are missing (a fresh Debian CI image, as root; elsewhere through sudo),
# install them.
test-deps:
	@missing=; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v redis-cli >/dev/null && command -v redis-benchmark >/dev/null || missing="$$missing redis-tools"; \
	command -v gcc >/dev/null || missing="$$missing gcc libc6-dev"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		if ! command -v apt-get >/dev/null; then \
			echo "make test needs:$$missing; install them with your package manager" >&2; exit 1; \
		fi; \
		sudo=; [ "$$(id -u)" -eq 0 ] || sudo="sudo -n"; \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing </dev/null; \
	fi

test: test-deps
	$(GO) vet $(PKGS)
	$(GO) test -race -timeout $(TEST_TIMEOUT) $(PKGS)
	# Allocation counts mean nothing under -race: check them without it.
	$(GO) test -count=1 -run 'Alloc' $(PKGS)

lint:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); \
	if [ -n "$$out" ]; then echo "gofmt -w these files:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@[ -x "$(GOBIN)/staticcheck" ] || $(GO) install honnef.co/go/tools/cmd/staticcheck@latest
	"$(GOBIN)/staticcheck" $(PKGS)

# Each package's fuzz targets are found with `go test -list`, so a new target
# is fuzzed without editing this file. Fuzzing needs one target per run.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
		list=$$($(GO) test -list '^Fuzz' $$pkg); \
		for target in $$(echo "$$list" | grep '^Fuzz' || true); do \
			echo "== $$pkg $$target"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 100x $$pkg; \
		done; \
	done

# The harness builds ./cmd/sluice itself and needs redis-server and
# redis-benchmark, which test-deps installs where they are missing.
bench: test-deps
	$(GO) run ./bench $(BENCH_FLAGS)

bench-quick: test-deps
	$(GO) run ./bench -quick $(BENCH_FLAGS)

bench-go:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) $(PKGS)

# The image only copies a binary built here (no Go image can be pulled), so
# the binary must be static: CGO_ENABLED=0.
docker:
	@command -v docker >/dev/null || { echo 'make docker needs Docker: apt-get install docker.io (Debian, Ubuntu) or https://docs.docker.com/engine/install/' >&2; exit 1; }
	mkdir -p bin/docker/data
	CGO_ENABLED=0 GOOS=linux $(GO) build -o bin/docker/sluice ./cmd/sluice
	docker build -t $(IMAGE) .

# The fault tests carry the dockertest build tag, so go test ./... (and make
# test) leaves them out; without a Docker engine they fail saying what to install.
test-cluster: docker
	$(GO) vet -tags dockertest ./test/docker
	SLUICE_IMAGE=$(IMAGE) $(GO) test -tags dockertest -count=1 -v -timeout $(CLUSTER_TEST_TIMEOUT) ./test/docker

clean:
	rm -rf bin
