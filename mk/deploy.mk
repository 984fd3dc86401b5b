# SOP 5 (deploy/rollback drill) and SOP 6 (rollout): executed for real against the demo service,
# with an injected fault, then verified. Services are stopped at the end (also when a drill fails),
# so `make drill` leaves nothing running. Running twice works.

.PHONY: rollback-drill rollout rollout-sim rollout-staging

rollback-drill: build
	$(BIN)/rollback-drill --execute --failure health --stop-after \
	  --run-dir $(RUNTIME)/deploy/drill --operator "$(OPERATOR)" \
	  --lock-file $(RUNTIME)/locks/rollback-drill.lock \
	  --output-file $(RESULTS)/deploy_rollback_result.env
	$(BIN)/rollback-verify --evidence-file $(RESULTS)/deploy_rollback_result.env --max-rollback-seconds 180
	@grep '^rollback_seconds=' $(RESULTS)/deploy_rollback_result.env

# One rollout per committed env-config: sim (the original's flat form, evidence in the original's
# rollout_result.env) and staging (the rich form). The configs name their run folders
# (runtime/deploy/<env>, relative to the repository root), so these targets use the same paths.
rollout: rollout-sim rollout-staging

ROLLOUT_OUT_sim := $(RESULTS)/rollout_result.env
ROLLOUT_OUT_staging := $(RESULTS)/rollout_result_staging.env

rollout-sim rollout-staging: rollout-%: build
	$(BIN)/svc-ctl --run-dir runtime/deploy/$* deploy --release v1 --wait-healthy 10 >/dev/null
	status=0; $(BIN)/rollout-orchestrator \
	  --env-config configs/deploy/environments/$*.yaml --execute --inject-fault \
	  --operator "$(OPERATOR)" --lock-dir $(RUNTIME)/locks \
	  --output-file $(ROLLOUT_OUT_$*) || status=$$?; \
	  $(BIN)/svc-ctl --run-dir runtime/deploy/$* stop; exit $$status
	$(BIN)/rollout-verify --evidence-file $(ROLLOUT_OUT_$*) --require-fault-step

DRILLS += rollback-drill rollout
