# Fuzzing (issue 8 item 18; not part of `make test` or CI): each parser's cargo-fuzz target in
# fuzz/ runs for FUZZ_SECONDS. Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); on the
# stable toolchain RUSTC_BOOTSTRAP=1 lets it pass the nightly-only sanitizer flags. A crash lands in
# fuzz/artifacts/<target>/ and the run stops with the target's status: turn the input into a
# fixture of the parser's own tests, fix the parser, run again.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= dotenv dotenv_round_trip fault_event probe_line wal_line ctp_config env_config calendar

.PHONY: fuzz
fuzz:
	@command -v cargo-fuzz >/dev/null || { echo "make fuzz: cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2; exit 2; }
	for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) || exit $$?; \
	done
