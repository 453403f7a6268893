# featurefs: the two commands a fresh machine needs are `make mount` and
# `make test` (see README.md). Everything else here serves those two.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

GO          ?= go
CACHE_ROOT  ?= $(HOME)/.feature_cache
MOUNTPOINT  ?= $(HOME)/features
BIN         := bin/fsmount
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck
# What the tests use from the system, as command:package pairs: FUSE, the
# tools the integration tests drive, and Node.js for the DuckDB client.
TEST_TOOLS  := fusermount3:fuse3 rsync:rsync getfattr:attr zstd:zstd sqlite3:sqlite3 node:nodejs npm:npm mkfs.ext4:e2fsprogs e2fsck:e2fsprogs losetup:mount setpriv:util-linux
FUZZTIME    ?= 10s

.PHONY: mount build test deps check unit fuzz integration bench bench-packages clean

## mount: build fsmount and serve $(CACHE_ROOT) at $(MOUNTPOINT) in the foreground (Ctrl-C unmounts)
mount: build
	@command -v fusermount3 >/dev/null || [ "$$(id -u)" = 0 ] || { echo "install fuse3 first: sudo apt-get install -y fuse3"; exit 1; }
	$(BIN) mount --cache-root "$(CACHE_ROOT)" "$(MOUNTPOINT)"

build:
	$(GO) build -o $(BIN) ./cmd/fsmount

## test: install what the tests need, then vet, lint, unit tests, short fuzzing, FUSE integration tests
test: deps check unit fuzz integration

deps:
	@missing=""; \
	for tp in $(TEST_TOOLS); do command -v $${tp%%:*} >/dev/null || missing="$$missing $${tp#*:}"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	cd test/client && npm ci --no-audit --no-fund --loglevel=error
	@[ -x "$(STATICCHECK)" ] || $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

check:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	$(STATICCHECK) ./...

unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /test/integration)

# Each fuzz target runs briefly on every test run; its seed corpus is committed.
fuzz:
	$(GO) test ./hashing -run '^$$' -fuzz '^FuzzInspect$$' -fuzztime $(FUZZTIME)
	$(GO) test ./fusefs -run '^$$' -fuzz '^FuzzClassify$$' -fuzztime $(FUZZTIME)
	$(GO) test ./fusefs -run '^$$' -fuzz '^FuzzParseGCCommand$$' -fuzztime $(FUZZTIME)

# The FUSE integration tests; afterwards, any featurefs mount that was not
# there before is a test that failed to clean up: it would block whoever
# touches its parent later, so it is cleared and the run fails.
integration:
	@before=$$( { grep ' fuse.featurefs ' /proc/mounts || true; } | awk '{print $$2}' | sort); \
	status=0; $(GO) test -count=1 -timeout 15m ./test/integration/ || status=$$?; \
	after=$$( { grep ' fuse.featurefs ' /proc/mounts || true; } | awk '{print $$2}' | sort); \
	left=$$(comm -13 <(echo "$$before") <(echo "$$after") | grep . || true); \
	if [ -n "$$left" ]; then echo "tests left mounts behind:"; echo "$$left"; \
		for m in $$left; do umount -l "$$m" 2>/dev/null || fusermount3 -u -z "$$m" || true; done; exit 1; fi; \
	exit $$status

## bench: the side-by-side suite against native disk, go-fuse loopback and squashfuse (long; not part of test)
BENCH_DIR ?= /var/tmp/featurefs-bench
bench:
	$(GO) run ./bench --dir "$(BENCH_DIR)" --out "$(BENCH_DIR)/results.md"

## bench-packages: the package micro-benchmarks (hashing, blobstore, manifest, gc at 100k entries)
bench-packages:
	$(GO) test -run '^$$' -bench . -benchtime 2x ./hashing ./blobstore ./manifest
	$(GO) test ./gc -run '^$$' -bench GC -benchtime 1x -gc.scale 100000

clean:
	rm -rf bin
