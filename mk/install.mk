# Install like a real tool: release binaries, man pages, shell completions, configs and calendar.
#   make install PREFIX=/opt/ctp-ops            make install-compat PREFIX=/opt/ctp-ops
#   make install PREFIX=/usr DESTDIR=/tmp/root   (a staging root, as packagers do)
#
# Layout (PREFIX=/usr/local):
#   $(BINDIR)            /usr/local/bin/<tool>
#   $(MANDIR)            /usr/local/share/man/man1/<tool>.1     (`man wal-drill`)
#   completions          /usr/local/share/bash-completion/completions/<tool>,
#                        /usr/local/share/zsh/site-functions/_<tool>,
#                        /usr/local/share/fish/vendor_completions.d/<tool>.fish
#   $(CONFDIR)           /usr/local/etc/ctp-ops/{calendar,sim,deploy,...}  (/etc/ctp-ops for PREFIX=/usr)
#   $(RESULTSDIR)        /var/lib/ctp-ops/results
# The tools find the configs and calendar there when not run from a checkout (search order:
# $CTP_OPS_CONFIG_DIR, ./configs, <prefix>/etc/ctp-ops beside the binary, /etc/ctp-ops; see
# evidence_core::paths). Existing config files are never overwritten: a reinstall keeps local edits.
# The tools find each other (wal-drill -> wal-writer, reconnect-evidence -> ctp-probe, ...) in the
# folder they are installed in, so install them together.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man/man1
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
CONFDIR ?= $(SYSCONFDIR)/ctp-ops
RESULTSDIR ?= /var/lib/ctp-ops/results
TOOLS := ctp-preflight ctp-front-sim session-guard ctp-probe fault-proxy fault-inject \
  reconnect-evidence slo-report wal-writer wal-replay wal-drill wal-verify rollback-drill \
  rollback-verify rollout-orchestrator rollout-verify svc-ctl demo-service prodlike prodlike-health \
  multihost failover-orchestrator failover-verify \
  render-systemd render-k8s alert-report render-prom-rules evidence
COMPAT := ctp_preflight_check=ctp-preflight ctp_fault_inject=fault-inject \
  run_reconnect_evidence=reconnect-evidence reconnect_slo_report=slo-report \
  simnow_probe=ctp-probe wal_replay_tool=wal-replay verify_wal_recovery_evidence=wal-verify \
  verify_deploy_rollback_evidence=rollback-verify rollout_orchestrator=rollout-orchestrator \
  verify_rollout_evidence=rollout-verify bootstrap_prodlike=prodlike \
  check_prodlike_health=prodlike-health bootstrap_prodlike_multi_host=multihost \
  failover_orchestrator=failover-orchestrator verify_failover_evidence=failover-verify \
  render_systemd_units=render-systemd \
  render_k8s_manifests=render-k8s render_alert_report=alert-report

.PHONY: install install-compat man check-man deb deb-test
install: setup
	$(CARGO) build --release --locked --workspace --bins
	install -d "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(MANDIR)" "$(DESTDIR)$(CONFDIR)" \
	  "$(DESTDIR)$(RESULTSDIR)" "$(DESTDIR)$(DATADIR)/bash-completion/completions" \
	  "$(DESTDIR)$(DATADIR)/zsh/site-functions" "$(DESTDIR)$(DATADIR)/fish/vendor_completions.d"
	for t in $(TOOLS); do install -m 0755 "target/release/$$t" "$(DESTDIR)$(BINDIR)/$$t"; done
	install -m 0644 docs/man/*.1 "$(DESTDIR)$(MANDIR)/"
	rm -rf target/completions && target/release/xtask completions --out-dir target/completions
	for t in $(TOOLS); do \
	  install -m 0644 "target/completions/bash/$$t" "$(DESTDIR)$(DATADIR)/bash-completion/completions/$$t"; \
	  install -m 0644 "target/completions/zsh/_$$t" "$(DESTDIR)$(DATADIR)/zsh/site-functions/_$$t"; \
	  install -m 0644 "target/completions/fish/$$t.fish" "$(DESTDIR)$(DATADIR)/fish/vendor_completions.d/$$t.fish"; \
	done
	cd configs && find . -type f | while read -r f; do \
	  dest="$(DESTDIR)$(CONFDIR)/$${f#./}"; \
	  install -d "$$(dirname "$$dest")"; \
	  if [ -e "$$dest" ]; then echo "install: keeping $$dest (exists)"; else install -m 0644 "$$f" "$$dest"; fi; \
	done
	@echo "installed $(words $(TOOLS)) tools in $(DESTDIR)$(BINDIR), configs in $(DESTDIR)$(CONFDIR), results in $(DESTDIR)$(RESULTSDIR)"

install-compat: install
	for pair in $(COMPAT); do ln -sfn "$${pair#*=}" "$(DESTDIR)$(BINDIR)/$${pair%%=*}"; done

# Man pages are generated from the clap definitions and committed (docs/man); `make test` fails
# when they are stale (crates/xtask/tests/man.rs). Regenerate after changing a tool's flags.
man:
	rm -f docs/man/*.1
	$(CARGO) run -q --locked -p xtask -- man --out-dir docs/man

check-man:
	$(CARGO) run -q --locked -p xtask -- check-man --dir docs/man

# A Debian package of the same layout (PREFIX=/usr: /usr/bin, /etc/ctp-ops, /var/lib/ctp-ops):
# staged with `make install DESTDIR=`, packed with dpkg-deb. Output: target/debian/ctp-ops_<v>_<arch>.deb.
DEB_VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
DEB_ARCH ?= $(shell dpkg --print-architecture)
DEB_ROOT := target/debian/root
deb:
	rm -rf $(DEB_ROOT)
	$(MAKE) install PREFIX=/usr DESTDIR=$(CURDIR)/$(DEB_ROOT)
	install -d $(DEB_ROOT)/DEBIAN
	cd $(DEB_ROOT) && find etc -type f | sed 's|^|/|' > DEBIAN/conffiles
	printf '%s\n' "Package: ctp-ops" "Version: $(DEB_VERSION)" "Architecture: $(DEB_ARCH)" \
	  "Maintainer: ctp-ops <ops@localhost>" "Section: admin" "Priority: optional" \
	  "Depends: libc6" "Recommends: iproute2, iptables, systemd" \
	  "Description: CTP operations drills with auditable evidence" \
	  " Preflight, reconnect, WAL recovery, deploy/rollback, rollout and failover drills," \
	  " their verifiers, renderers (systemd, Kubernetes, Prometheus rules) and the evidence tool." \
	  > $(DEB_ROOT)/DEBIAN/control
	dpkg-deb --root-owner-group --build $(DEB_ROOT) target/debian/ctp-ops_$(DEB_VERSION)_$(DEB_ARCH).deb

deb-test: deb
	scripts/deb-test.sh target/debian/ctp-ops_$(DEB_VERSION)_$(DEB_ARCH).deb
