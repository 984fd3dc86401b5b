# SOP 7 (the production-like stack on one host): the native stack as local processes, probed for
# real, with a rollout against it. Everything started here is stopped at the end, also when a step
# fails. Needs root (PostgreSQL runs as the postgres user) and the packages scripts/setup.sh installs.

.PHONY: prodlike-up prodlike-health prodlike-ps prodlike-down prodlike-acceptance

PRODLIKE_RUN ?= $(RUNTIME)/prodlike
PRODLIKE_BASE_PORT ?= 17000
PRODLIKE_FLAGS = --run-dir $(PRODLIKE_RUN) --base-port $(PRODLIKE_BASE_PORT) --operator "$(OPERATOR)"

prodlike-up: build
	$(BIN)/prodlike --execute --action up $(PRODLIKE_FLAGS) \
	  --output-file $(RESULTS)/prodlike_bootstrap_result.env \
	  --health-report $(RESULTS)/prodlike_health_report.json

prodlike-health: build
	$(BIN)/prodlike-health --run-dir $(PRODLIKE_RUN) --wait-timeout 10 \
	  --report-json $(RESULTS)/prodlike_health_report.json

prodlike-ps: build
	$(BIN)/prodlike --execute --action ps $(PRODLIKE_FLAGS) --output-file $(RESULTS)/prodlike_ps_result.env

prodlike-down: build
	$(BIN)/prodlike --execute --action down $(PRODLIKE_FLAGS) \
	  --output-file $(RESULTS)/prodlike_down_result.env

# up -> health -> rollout (staging, fault injected) with the demo service's /health checking the
# stack's Redis and PostgreSQL -> rollout-verify -> down (always).
PRODLIKE_ROLLOUT_OUT := $(RESULTS)/rollout_result_prodlike.env
prodlike-acceptance: build
	status=0; \
	$(BIN)/prodlike --execute --action up $(PRODLIKE_FLAGS) \
	  --output-file $(RESULTS)/prodlike_bootstrap_result.env \
	  --health-report $(RESULTS)/prodlike_health_report.json || status=$$?; \
	if [ $$status -eq 0 ]; then \
	  $(BIN)/prodlike-health --run-dir $(PRODLIKE_RUN) --wait-timeout 10 \
	    --report-json $(RESULTS)/prodlike_health_report.json >/dev/null || status=$$?; \
	fi; \
	if [ $$status -eq 0 ]; then \
	  export DEMO_REDIS_ADDR=127.0.0.1:$$(( $(PRODLIKE_BASE_PORT) + 1 )) \
	         DEMO_PG_ADDR=127.0.0.1:$$(( $(PRODLIKE_BASE_PORT) + 21 )) \
	         DEMO_STACK_PASSWORD_FILE=$(abspath $(PRODLIKE_RUN))/secrets/password; \
	  $(BIN)/svc-ctl --run-dir runtime/deploy/staging deploy --release v1 --wait-healthy 10 >/dev/null \
	  && $(BIN)/rollout-orchestrator --env-config configs/deploy/environments/staging.yaml \
	       --execute --inject-fault --operator "$(OPERATOR)" --lock-dir $(RUNTIME)/locks \
	       --output-file $(PRODLIKE_ROLLOUT_OUT) || status=$$?; \
	  $(BIN)/svc-ctl --run-dir runtime/deploy/staging stop || true; \
	fi; \
	if [ $$status -eq 0 ]; then \
	  $(BIN)/rollout-verify --evidence-file $(PRODLIKE_ROLLOUT_OUT) --require-fault-step || status=$$?; \
	fi; \
	$(BIN)/prodlike --execute --action down $(PRODLIKE_FLAGS) \
	  --output-file $(RESULTS)/prodlike_down_result.env >/dev/null || status=$$?; \
	exit $$status

DRILLS += prodlike-acceptance
