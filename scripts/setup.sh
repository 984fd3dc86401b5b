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
)
if [ "${1:-}" = bench ]; then pkgs[hyperfine]=hyperfine; fi
for cmd in "${!pkgs[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || need+=("${pkgs[$cmd]}")
done
# PostgreSQL's server binaries are not on PATH; an installed postgresql-15 is left as it is.
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)

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
