# featurefs: the two commands a fresh machine needs are `make mount` and
# `make test` (see README.md). Everything else here serves those two.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

GO          ?= go
# The cache root is the one fsmount's commands use by themselves: set
# FEATURE_STORE_PATH and `make mount` and `fsmount stats|gc|verify` agree.
CACHE_ROOT  ?= $(or $(FEATURE_STORE_PATH),$(HOME)/.feature_cache)
MOUNTPOINT  ?= $(HOME)/features
BIN         := bin/fsmount
# make install puts fsmount in $(PREFIX)/bin: /usr/local as root, else ~/.local.
PREFIX      ?= $(if $(filter 0,$(shell id -u)),/usr/local,$(HOME)/.local)
SUMMARY     := bin/test-summary
# Every test run appends its counts here; `make test` closes with their sum.
COUNTS      := bin/test-counts
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck
# What the tests use from the system, as command:package pairs: FUSE, the
# tools the integration tests drive, and Node.js for the DuckDB client.
TEST_TOOLS  := fusermount3:fuse3 rsync:rsync getfattr:attr zstd:zstd sqlite3:sqlite3 node:nodejs npm:npm mkfs.ext4:e2fsprogs e2fsck:e2fsprogs losetup:mount setpriv:util-linux \
              x86_64-w64-mingw32-gcc:gcc-mingw-w64-x86-64
FUZZTIME    ?= 10s

.PHONY: mount mount-bg fuse-check build install test test-start deps check cross unit fuzz integration clear-test-mounts bench bench-packages clean

## mount: build fsmount and serve $(CACHE_ROOT) at $(MOUNTPOINT) in the foreground (Ctrl-C unmounts)
mount: build fuse-check
	@echo "serving $(CACHE_ROOT) at $(MOUNTPOINT) in the foreground: use another terminal; Ctrl-C here unmounts"
	$(BIN) mount --cache-root "$(CACHE_ROOT)" "$(MOUNTPOINT)"

## mount-bg: the same, as a background daemon; returns once the mount serves (fusermount3 -u unmounts)
mount-bg: build fuse-check
	$(BIN) mount --background --cache-root "$(CACHE_ROOT)" "$(MOUNTPOINT)"

fuse-check:
	@command -v fusermount3 >/dev/null || [ "$$(id -u)" = 0 ] || { echo "install fuse3 first: sudo apt-get install -y fuse3"; exit 1; }

# The commit goes in through the linker as well: the go command records none
# with -buildvcs=false or in a git worktree (a recorded one wins).
build:
	@commit=$$(git rev-parse --short=12 HEAD 2>/dev/null || true); \
	if [ -n "$$commit" ] && ! git diff --quiet HEAD 2>/dev/null; then commit="$$commit+dirty"; fi; \
	echo "$(GO) build -o $(BIN) ./cmd/fsmount  (commit $${commit:-unknown})"; \
	$(GO) build -ldflags "-X main.commit=$$commit" -o $(BIN) ./cmd/fsmount

## install: build fsmount and copy it to $(PREFIX)/bin
install: build
	install -d "$(PREFIX)/bin"
	install -m 0755 $(BIN) "$(PREFIX)/bin/fsmount"
	@case ":$$PATH:" in *":$(PREFIX)/bin:"*) ;; *) echo "$(PREFIX)/bin is not on your PATH: export PATH=\"$(PREFIX)/bin:\$$PATH\"";; esac

## test: install what the tests need, then vet, lint, cross-builds, unit tests, short fuzzing, FUSE integration tests
test: test-start deps check cross unit fuzz integration
	@$(SUMMARY) -total $(COUNTS)

test-start: $(SUMMARY)
	@rm -f $(COUNTS)

$(SUMMARY): test/summary/main.go
	$(GO) build -o $@ ./test/summary

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

## cross: build fsmount.exe (gc, stats, verify) for Windows and vet the non-Linux code; nothing here runs it
# SQLite is cgo, so Windows is a cgo cross-build with mingw-w64 (1.5-3
# minutes cold on 2 cores, about 5 s once cached). macOS is not built: there
# is no macOS SDK for cgo here. The os.Root blob store that Windows and macOS
# use is tested on Linux through its build tag.
WIN_ENV := CGO_ENABLED=1 GOOS=windows GOARCH=amd64 CC=x86_64-w64-mingw32-gcc
cross:
	$(WIN_ENV) $(GO) build -o bin/fsmount.exe ./cmd/fsmount
	@[ "$$(head -c 2 bin/fsmount.exe)" = MZ ] || { echo "bin/fsmount.exe is not a PE executable"; exit 1; }
	$(WIN_ENV) $(GO) vet ./cmd/fsmount ./blobstore ./gc ./manifest ./cache
	GOOS=darwin CGO_ENABLED=0 $(GO) vet ./blobstore
	$(GO) vet -tags blobstore_osroot ./blobstore
	$(GO) test -count=1 -tags blobstore_osroot ./blobstore

# Packages print a line each as they finish (go test runs two at a time).
unit: $(SUMMARY)
	@echo "unit tests"
	@$(GO) test -json -count=1 $$($(GO) list ./... | grep -v /test/integration) | $(SUMMARY) -counts $(COUNTS)

# Each fuzz target runs briefly on every test run; its seed corpus is committed.
# The three run side by side, each for the whole FUZZTIME.
FUZZ_TARGETS := ./hashing:FuzzInspect ./fusefs:FuzzClassify ./fusefs:FuzzParseGCCommand
fuzz: $(SUMMARY)
	@echo "fuzzing $(FUZZ_TARGETS) for $(FUZZTIME) each"
	@pids=""; for pt in $(FUZZ_TARGETS); do \
		$(GO) test -json $${pt%%:*} -run '^$$' -fuzz "^$${pt#*:}\$$" -fuzztime $(FUZZTIME) | $(SUMMARY) -counts $(COUNTS) & \
		pids="$$pids $$!"; done; \
	status=0; for p in $$pids; do wait $$p || status=1; done; exit $$status

# The FUSE integration tests, with every temporary directory (so every
# mountpoint) under a directory of this run's own. Afterwards a featurefs
# mount left there is a test that failed to clean up: it would block whoever
# touches its parent later, so it is cleared and the run fails. Mounts
# anywhere else (other runs, other users, other programs) are not touched.
integration: $(SUMMARY)
	@echo "integration tests (FUSE)"
	@tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/featurefs-test.XXXXXX"); \
	status=0; TMPDIR=$$tmp $(GO) test -json -count=1 -timeout 15m ./test/integration/ \
		| $(SUMMARY) -tests 'featurefs/test/integration$$' -counts $(COUNTS) || status=$$?; \
	$(MAKE) -s clear-test-mounts TEST_TMP="$$tmp" || status=1; \
	$(MAKE) -s clear-test-mounts TEST_TMP="$$tmp" >/dev/null 2>&1 && rm -rf "$$tmp"; \
	exit $$status

# Lazily unmounts the featurefs mounts under TEST_TMP and fails if there were any.
clear-test-mounts:
	@[ -n "$(TEST_TMP)" ] || { echo "clear-test-mounts: set TEST_TMP"; exit 2; }; \
	left=$$(awk -v p="$(abspath $(TEST_TMP))/" '$$3 == "fuse.featurefs" && index($$2, p) == 1 {print $$2}' /proc/mounts); \
	if [ -n "$$left" ]; then echo "tests left mounts behind:"; echo "$$left"; \
		for m in $$left; do umount -l "$$m" 2>/dev/null || fusermount3 -u -z "$$m" || true; done; exit 1; fi

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
