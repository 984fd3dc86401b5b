# ctp-ops: one target per SOP, `drill` for every SOP on the embedded defaults, `test` for CI.
# Each SOP's targets live in mk/<sop>.mk and add themselves to DRILLS.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
BIN := target/debug
RESULTS ?= docs/results
RUNTIME ?= runtime
OPERATOR ?= $(or $(USER),ops)
DRILLS :=

.PHONY: all setup build test drill clean-results bench
all: build

setup:
	@scripts/setup.sh

build: setup
	$(CARGO) build --workspace --bins --locked

include $(sort $(wildcard mk/*.mk))

# Every SOP on the embedded defaults: each drill really runs and its evidence is verified.
drill: build $(DRILLS)
	@echo "make drill: all SOP drills passed: $(DRILLS)"
	@# The table of every drill's evidence in $(RESULTS) (older files included: exit 1 there is a
	@# warning, as this run's drills all passed above; unreadable evidence, exit 2, fails).
	@$(BIN)/evidence index --results-dir $(RESULTS) || { rc=$$?; [ $$rc -eq 1 ] && \
	  echo "make drill: warning: evidence in $(RESULTS) from an earlier run did not pass (see the table)" >&2 || exit $$rc; }

test: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --locked --quiet
	$(CARGO) test --workspace --locked

bench:
	@scripts/setup.sh bench
	@for b in scripts/bench/*.sh; do echo "== $$b"; bash "$$b"; done

clean-results:
	find $(RESULTS) -mindepth 1 ! -name README.md -delete
	rm -rf $(RUNTIME)
