#!/usr/bin/env bash
# Benchmark: ctp-preflight with its network checks (DNS + TCP connects to both fronts) against a
# running ctp-front-sim, release build. Target: median under 20 ms. Needs hyperfine
# (`scripts/setup.sh bench` installs it).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked -q -p ctp-preflight -p ctp-front-sim
work=$(mktemp -d)
sim_pid=
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
target/release/ctp-front-sim --trader-port 0 --market-port 0 --ports-file "$work/ready.json" >/dev/null &
sim_pid=$!
for _ in $(seq 1 200); do [ -s "$work/ready.json" ] && break; sleep 0.05; done
tp=$(jq -r .trader_port "$work/ready.json")
mp=$(jq -r .market_port "$work/ready.json")
sed -e "s/41201/$tp/" -e "s/41211/$mp/" configs/sim/local.yaml >"$work/local.yaml"
export CTP_SIM_PASSWORD=bench-password
cmd="target/release/ctp-preflight --config $work/local.yaml --runtime-dir $work"
$cmd >/dev/null   # must pass before it is timed
hyperfine --warmup 5 --runs 100 -N --export-json "$work/bench.json" "$cmd"
median_ms=$(jq -r '.results[0].median * 1000 | . * 100 | round / 100' "$work/bench.json")
echo "ctp-preflight median: ${median_ms} ms (target < 20 ms)"
awk -v m="$median_ms" 'BEGIN { exit !(m < 20) }' || { echo "ctp-preflight: median over target" >&2; exit 1; }
