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
  [nft]=nftables
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
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo is not installed" >&2; exit 2; }
