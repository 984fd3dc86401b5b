# ctp-ops: one target per SOP, `drill` for every SOP on the embedded defaults, `test` for CI.
# Each SOP's targets live in mk/<sop>.mk and add themselves to DRILLS.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
# Targets run one at a time: the drills share ports, locks and runtime/ (make -j is safe, not faster).
.NOTPARALLEL:
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
BIN := $(TARGET_DIR)/debug
SKIP_LOG := $(abspath $(TARGET_DIR))/skipped-tests.txt
RESULTS ?= docs/results
RUNTIME ?= runtime
OPERATOR ?= $(or $(USER),ops)
DRILLS :=

.PHONY: all help setup build test drill clean-results bench
all: build

help:
	@echo "make test           fmt check, clippy -D warnings, rustdoc, every test (cargo-nextest, per-test timeout)"
	@echo "make drill          every SOP drill on the embedded defaults, evidence verified: $(DRILLS)"
	@echo "make <drill>        one of them (see mk/*.mk for the variables each takes)"
	@echo "make bench          the benchmarks under scripts/bench/ (release build)"
	@echo "make install        release binaries into PREFIX (install-compat: plus the original command names)"
	@echo "make clean-results  remove generated evidence from $(RESULTS) and $(RUNTIME)/"

setup:
	@scripts/setup.sh

build: setup
	$(CARGO) build --workspace --bins --locked

include $(sort $(wildcard mk/*.mk))

# Every SOP on the embedded defaults: each drill really runs and its evidence is verified.
drill: build $(DRILLS)
	@echo "make drill: all SOP drills passed: $(DRILLS)"

test: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --locked --quiet
	@rm -f $(SKIP_LOG)
	@# cargo-nextest runs each test in its own process with a deadline (.config/nextest.toml), so a
	@# hung daemon fails fast; plain cargo test where nextest is missing.
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  CTP_OPS_SKIP_LOG=$(SKIP_LOG) $(CARGO) nextest run --workspace --locked; \
	else \
	  echo "make test: cargo-nextest not found; running cargo test (no per-test timeout)" >&2; \
	  CTP_OPS_SKIP_LOG=$(SKIP_LOG) $(CARGO) test --workspace --locked; \
	fi
	@if [ -s $(SKIP_LOG) ]; then echo "make test: skipped tests (with the reason):"; sed 's/^/  /' $(SKIP_LOG); fi

bench:
	@scripts/setup.sh bench
	@for b in scripts/bench/*.sh; do echo "== $$b"; bash "$$b"; done

clean-results:
	find $(RESULTS) -mindepth 1 ! -name README.md -delete
	rm -rf $(RUNTIME)
