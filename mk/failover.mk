# SOP 8: primary/standby failover across hosts. For each mode: the hosts up (network namespaces
# h1..h3 on a bridge, Redis + Sentinel + PostgreSQL from the prod-like stack), one failover while
# clients write (evidence $(RESULTS)/failover_result_<mode>.env), failover-verify, the hosts down.
# A fresh topology per mode: Sentinel refuses a second failover of the same master within
# 2 x failover-timeout, and the old PostgreSQL primary is not rejoined. `down` runs also on failure
# and on Ctrl-C. Needs root (namespaces); see docs/FAILOVER_RUNBOOK.md.
FAILOVER_MODES ?= planned unplanned partition
FAILOVER_ENV_CONFIG ?= configs/deploy/environments/prodlike_multi_host.yaml
FAILOVER_INVENTORY ?= configs/multihost/inventory.yaml
FAILOVER_ACK_MODE ?= replicated
FAILOVER_MAX_SECONDS ?= 300
FAILOVER_MAX_LAG_EVENTS ?= 0
MULTIHOST := $(BIN)/multihost --inventory $(FAILOVER_INVENTORY) --operator "$(OPERATOR)"

.PHONY: failover-drill multihost-up multihost-down multihost-health
failover-drill: build
	@mkdir -p $(RESULTS)
	@trap '$(MULTIHOST) --action down --execute >/dev/null || true' EXIT; \
	for mode in $(FAILOVER_MODES); do \
	  echo "== failover-drill: $$mode"; \
	  $(MULTIHOST) --action down --execute >/dev/null; \
	  $(MULTIHOST) --action up --execute >/dev/null; \
	  $(BIN)/failover-orchestrator --env-config $(FAILOVER_ENV_CONFIG) --inventory $(FAILOVER_INVENTORY) \
	      --mode $$mode --ack-mode $(FAILOVER_ACK_MODE) --operator "$(OPERATOR)" \
	      --output-file $(RESULTS)/failover_result_$$mode.env --execute; \
	  $(BIN)/failover-verify --evidence-file $(RESULTS)/failover_result_$$mode.env \
	      --max-failover-seconds $(FAILOVER_MAX_SECONDS) --max-data-lag-events $(FAILOVER_MAX_LAG_EVENTS); \
	done

multihost-up: build
	$(MULTIHOST) --action up --execute

multihost-health: build
	$(MULTIHOST) --action health --execute

multihost-down: build
	$(MULTIHOST) --action down --execute

DRILLS += failover-drill
