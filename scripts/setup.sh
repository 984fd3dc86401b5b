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
  [systemd-analyze]=systemd
  [promtool]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [python3]=python3
  [man]=man-db
  [dpkg-deb]=dpkg
)
if [ "${1:-}" = bench ]; then pkgs[hyperfine]=hyperfine; fi
for cmd in "${!pkgs[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || need+=("${pkgs[$cmd]}")
done

if ((${#need[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages ${need[*]}; run as root or install them" >&2
    exit 2
  fi
  echo "setup: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
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
