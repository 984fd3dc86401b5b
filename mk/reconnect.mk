# SOP 2: the reconnect drill on the embedded defaults. reconnect-evidence sees that
# $(RECONNECT_CONFIG)'s fronts are loopback, starts ctp-front-sim (on free ports) and fault-proxy in
# front of it, runs ctp-probe on a derived config that points at the proxy, injects the five
# scenarios through fault-inject (proxy backend) with short holds, waits after each clear until the
# probe is healthy again, stops everything it started and runs slo-report, whose exit status is the
# verdict (0 SLO met, 1 missed or a window did not recover). Each drill has a fresh run folder,
# $(RUNTIME)/reconnect/<drill id>/; its fault events and probe log are also copied to
# $(RUNTIME)/fault_events.jsonl and $(RUNTIME)/reconnect_probe.log, which `make slo-report` reads.
# The latency scenarios use a delay above the probe's heartbeat timeout, so they cause real
# outages (the simulator sends no heartbeats: the probe's pings must cross the fault).
RECONNECT_CONFIG ?= configs/sim/local.yaml
RECONNECT_SCENARIOS ?= disconnect,latency,jitter,loss,combined
RECONNECT_HOLD_MS ?= 1000
RECONNECT_DELAY_MS ?= 1000
RECONNECT_HEARTBEAT_TIMEOUT_MS ?= 300
RECONNECT_HEALTH_INTERVAL_MS ?= 100
RECONNECT_SETTLE_MS ?= 1000
RECONNECT_TARGET_P99_SEC ?= 10

.PHONY: reconnect-drill
reconnect-drill: build
	@mkdir -p $(RUNTIME) $(RESULTS)
	$(BIN)/reconnect-evidence --config $(RECONNECT_CONFIG) --execute-faults --local-ports free \
	    --scenarios $(RECONNECT_SCENARIOS) --hold-ms $(RECONNECT_HOLD_MS) \
	    --delay-ms $(RECONNECT_DELAY_MS) --heartbeat-timeout-ms $(RECONNECT_HEARTBEAT_TIMEOUT_MS) \
	    --health-interval-ms $(RECONNECT_HEALTH_INTERVAL_MS) --settle-ms $(RECONNECT_SETTLE_MS) \
	    --target-p99-sec $(RECONNECT_TARGET_P99_SEC) --runtime-dir $(RUNTIME) \
	    --probe-log $(RUNTIME)/reconnect_probe.log --event-log $(RUNTIME)/fault_events.jsonl \
	    --report-file $(RESULTS)/reconnect_fault_result.md \
	    --health-json-file $(RESULTS)/ops_health_report.json \
	    --health-markdown-file $(RESULTS)/ops_health_report.md \
	    --alert-json-file $(RESULTS)/ops_alert_report.json \
	    --alert-markdown-file $(RESULTS)/ops_alert_report.md \
	    --samples-csv $(RESULTS)/reconnect_samples.csv \
	    --timeline-svg $(RESULTS)/reconnect_timeline.svg --operator "$(OPERATOR)"

# The drill runs slo-report itself, with what it measured (processes alive, the simulator
# cross-check, its settle interval): `make drill` does not rerun it, which would blank those lines.
# `make slo-report` (mk/slo.mk) re-reads the drill's copies by hand.
DRILLS += reconnect-drill
