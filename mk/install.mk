# Install the release binaries, and (install-compat) links named after the original toolkit's
# commands, whose flags they accept, so existing scripts and cron lines keep working:
#   make install PREFIX=/opt/ctp-ops            make install-compat PREFIX=/opt/ctp-ops
# The tools find each other (wal-drill -> wal-writer, reconnect-evidence -> ctp-probe, ...) in the
# folder they are installed in, so install them together.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
TOOLS := ctp-preflight ctp-front-sim session-guard ctp-probe fault-proxy fault-inject \
  reconnect-evidence slo-report wal-writer wal-replay wal-drill wal-verify rollback-drill \
  rollback-verify rollout-orchestrator rollout-verify svc-ctl demo-service prodlike prodlike-health \
  multihost failover-orchestrator failover-verify
COMPAT := ctp_preflight_check=ctp-preflight ctp_fault_inject=fault-inject \
  run_reconnect_evidence=reconnect-evidence reconnect_slo_report=slo-report \
  simnow_probe=ctp-probe wal_replay_tool=wal-replay verify_wal_recovery_evidence=wal-verify \
  verify_deploy_rollback_evidence=rollback-verify rollout_orchestrator=rollout-orchestrator \
  verify_rollout_evidence=rollout-verify bootstrap_prodlike=prodlike \
  check_prodlike_health=prodlike-health bootstrap_prodlike_multi_host=multihost \
  failover_orchestrator=failover-orchestrator verify_failover_evidence=failover-verify

.PHONY: install install-compat
install: setup
	$(CARGO) build --release --locked --workspace --bins
	install -d "$(DESTDIR)$(BINDIR)"
	for t in $(TOOLS); do install -m 0755 "target/release/$$t" "$(DESTDIR)$(BINDIR)/$$t"; done

install-compat: install
	for pair in $(COMPAT); do ln -sfn "$${pair#*=}" "$(DESTDIR)$(BINDIR)/$${pair%%=*}"; done
