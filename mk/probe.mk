# SOP 2 (part): ctp-probe against ctp-front-sim. Starts the simulator on free ports with the knobs
# of configs/sim/local.yaml, runs ctp-probe, takes both fronts down and up PROBE_CYCLES times, and
# checks that the probe's recovery times agree with the simulator's own login log within 10 ms
# (scripts/bench/ctp-probe.sh with the debug binaries). Everything it starts is stopped on exit.
PROBE_CYCLES ?= 3

.PHONY: probe-check
probe-check: build
	BIN=$(BIN) CYCLES=$(PROBE_CYCLES) scripts/bench/ctp-probe.sh

DRILLS += probe-check
