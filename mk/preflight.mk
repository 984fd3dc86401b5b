# SOP 1: preflight. Starts ctp-front-sim on configs/sim/local.yaml's ports, runs ctp-preflight
# against it (the text lines are for the reader; the JSON report is the evidence, and its run's
# exit status is the verdict), and stops the simulator even when a step fails.
PREFLIGHT_CONFIG ?= configs/sim/local.yaml
PREFLIGHT_REPORT ?= $(RESULTS)/preflight_result.json

.PHONY: preflight
preflight: build
	@mkdir -p $(RUNTIME) $(RESULTS)
	@rm -f $(RUNTIME)/preflight_sim_ready.json
	@$(BIN)/ctp-front-sim --config $(PREFLIGHT_CONFIG) \
	    --event-log $(RUNTIME)/preflight_sim_events.jsonl \
	    --ports-file $(RUNTIME)/preflight_sim_ready.json >/dev/null & sim=$$!; \
	trap 'kill $$sim 2>/dev/null || true; wait $$sim 2>/dev/null || true' EXIT; \
	for _ in $$(seq 1 200); do \
	  [ -s $(RUNTIME)/preflight_sim_ready.json ] && break; \
	  kill -0 $$sim 2>/dev/null || { echo "preflight: ctp-front-sim did not start" >&2; exit 2; }; \
	  sleep 0.05; \
	done; \
	[ -s $(RUNTIME)/preflight_sim_ready.json ] || { echo "preflight: ctp-front-sim not ready" >&2; exit 2; }; \
	export CTP_SIM_PASSWORD="$${CTP_SIM_PASSWORD:-local-sim-password}"; \
	$(BIN)/ctp-preflight --config $(PREFLIGHT_CONFIG) --runtime-dir $(RUNTIME) || true; \
	rc=0; $(BIN)/ctp-preflight --config $(PREFLIGHT_CONFIG) --runtime-dir $(RUNTIME) --json \
	    --output-file $(PREFLIGHT_REPORT) || rc=$$?; \
	[ $$rc -eq 0 ] || { echo "preflight: FAILED (exit $$rc), report $(PREFLIGHT_REPORT)" >&2; exit $$rc; }; \
	echo "preflight: passed against ctp-front-sim; report $(PREFLIGHT_REPORT)"

DRILLS += preflight
