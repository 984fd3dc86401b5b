# SOP 3: reconnect SLO report, on the evidence of the latest reconnect drill (runtime/).
# Run by hand after reconnect-drill (mk/reconnect.mk), which produces its inputs; not in DRILLS:
# the drill's own report carries what only the drill measured.
SLO_EVENTS ?= $(RUNTIME)/fault_events.jsonl
SLO_PROBE_LOG ?= $(RUNTIME)/reconnect_probe.log
SLO_TARGET_P99_SEC ?= 10
SLO_SETTLE_MS ?= $(or $(RECONNECT_SETTLE_MS),1000)

.PHONY: slo-report
slo-report: build
	@for f in "$(SLO_EVENTS)" "$(SLO_PROBE_LOG)"; do \
	  if [ ! -f "$$f" ]; then \
	    echo "slo-report: $$f not found: run a reconnect drill first (make reconnect-drill), or set SLO_EVENTS= and SLO_PROBE_LOG=" >&2; \
	    exit 2; \
	  fi; \
	done
	$(BIN)/slo-report \
	  --fault-events-file "$(SLO_EVENTS)" --probe-log-file "$(SLO_PROBE_LOG)" \
	  --output-file $(RESULTS)/reconnect_fault_result.md \
	  --health-json-file $(RESULTS)/ops_health_report.json \
	  --health-markdown-file $(RESULTS)/ops_health_report.md \
	  --alert-json-file $(RESULTS)/ops_alert_report.json \
	  --alert-markdown-file $(RESULTS)/ops_alert_report.md \
	  --samples-csv $(RESULTS)/reconnect_samples.csv \
	  --timeline-svg $(RESULTS)/reconnect_timeline.svg \
	  --target-p99-sec $(SLO_TARGET_P99_SEC) --settle-ms $(SLO_SETTLE_MS) --operator "$(OPERATOR)" --host "$$(hostname)"
