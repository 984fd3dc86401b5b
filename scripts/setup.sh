#!/usr/bin/env bash
# Installs what `make test` and `make drill` need on a fresh Debian machine, and nothing when it is
# already there. Safe to run repeatedly.
set -euo pipefail

need=()
# command -> Debian package
# Add an entry when a test or drill needs a command from a Debian package.
declare -A pkgs=(
  [ip]=iproute2
  [iptables]=iptables
  # fault-inject --backend nft: a fault that expires in the kernel
  [nft]=nftables
  # SOP 7 prod-like stack (native backend): servers run as local processes, never as services
  [redis-server]=redis-server
  [redis-sentinel]=redis-sentinel
  [prometheus]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [prometheus-node-exporter]=prometheus-node-exporter
  [prometheus-redis-exporter]=prometheus-redis-exporter
  [prometheus-postgres-exporter]=prometheus-postgres-exporter
  # compose backend of the prod-like stacks (crates/compose-core): a private dockerd, compose v1,
  # local base images from debootstrap, and the clients its test probes with
  [dockerd]=docker.io
  [docker-compose]=docker-compose
  [debootstrap]=debootstrap
  [redis-cli]=redis-tools
  [psql]=postgresql-client
  # renderers, alert-report, evidence, make deb
  [systemd-analyze]=systemd
  [promtool]=prometheus
  [python3]=python3
  [man]=man-db
  [dpkg-deb]=dpkg
  # ctp-api: ctp2rs's build script runs bindgen (clang, libclang below); its tests build LocalCTP
  # and an md stub with g++/gcc.
  [clang]=clang
  [g++]=g++
  [gcc]=gcc
)
if [ "${1:-}" = bench ]; then pkgs[hyperfine]=hyperfine; fi
for cmd in "${!pkgs[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || need+=("${pkgs[$cmd]}")
done
# PostgreSQL's server binaries are not on PATH; an installed postgresql-15 is left as it is.
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
# libclang (ctp2rs's bindgen loads it at build time): a library, not a command.
compgen -G '/usr/lib/llvm-*/lib/libclang.so' >/dev/null || need+=(libclang-dev)

if ((${#need[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages ${need[*]}; run as root or install them" >&2
    exit 2
  fi
  echo "setup: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo is not installed" >&2; exit 2; }

# kubernetes-validate (PyPI; bundles the Kubernetes schemas, validates offline) for render-k8s's tests,
# in a venv under the cache folder; the tests look for it there (or $KUBERNETES_VALIDATE, or PATH).
kv_venv="${CTP_OPS_CACHE:-$HOME/.cache/ctp-ops}/kv-venv"
if ! command -v kubernetes-validate >/dev/null 2>&1 && [ ! -x "$kv_venv/bin/kubernetes-validate" ]; then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    fi
  fi
  echo "setup: installing kubernetes-validate into $kv_venv" >&2
  python3 -m venv "$kv_venv"
  "$kv_venv/bin/pip" install -q kubernetes-validate
fi
