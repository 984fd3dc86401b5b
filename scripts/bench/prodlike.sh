#!/usr/bin/env bash
# SOP 7 figures for the native prod-like stack (release build; root and the packages of
# scripts/setup.sh): seconds from `up` to healthy with every Prometheus target up (cold: fresh
# initdb/basebackup; warm: data kept), the health check's wall time, seconds until a killed member
# is named unhealthy, and the stack's memory (RSS and PSS of every process of the stack).
# Targets: healthy < 10 s, health check < 300 ms, detection < 2 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${RUNS:-3}
base=${BENCH_BASE_PORT:-24000}
if [ "$(id -u)" -ne 0 ]; then echo "SKIP prodlike bench: needs root" >&2; exit 0; fi
cargo build --release --locked -q -p prodlike -p prodlike-health
P=target/release/prodlike
H=target/release/prodlike-health
dir=$(mktemp -d)
chmod 711 "$dir"
rd="$dir/run"
common=(--run-dir "$rd" --base-port "$base" --lock-file "$dir/lock" --health-report "$dir/h.json")
trap '$P --execute --action down "${common[@]}" --output-file - >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
ms() { date +%s%N; }

for kind in cold warm; do
  for i in $(seq "$runs"); do
    if [ "$kind" = cold ]; then
      $P --execute --action down --purge "${common[@]}" --output-file - >/dev/null 2>&1 || true
    else
      $P --execute --action down "${common[@]}" --output-file - >/dev/null 2>&1 || true
    fi
    $P --execute --action up "${common[@]}" --output-file "$dir/up.env" 2>/dev/null >/dev/null
    echo "up ($kind) run $i: ready $(sed -n 's/^PRODLIKE_READY_SECONDS=//p' "$dir/up.env") s," \
      "healthy (all targets up) $(sed -n 's/^PRODLIKE_HEALTHY_SECONDS=//p' "$dir/up.env") s"
  done
done

for i in $(seq 10); do
  t0=$(ms); $H --run-dir "$rd" --report-json "$dir/hc.json" >/dev/null 2>&1; t1=$(ms)
  echo "health check run $i: wall $(( (t1 - t0) / 1000000 )) ms (probes $(python3 -c "import json;print(json.load(open('$dir/hc.json'))['check_wall_ms'])") ms)"
done

# Memory: every process of the stack: the recorded pids and their children (PostgreSQL's
# children run in their own sessions, so process groups do not find them).
pids=" $(cat "$rd"/*.pid | sed -n 's/^pid=//p' | tr '\n' ' ') "
read -r rss pss n < <(for p in /proc/[0-9]*; do
  read -r me pp < <(awk '{print $1, $4}' "$p/stat" 2>/dev/null) || continue
  case "$pids" in *" $me "*|*" $pp "*) awk '/^Rss:/{r=$2}/^Pss:/{s=$2}END{print r, s}' "$p/smaps_rollup" 2>/dev/null;; esac
done | awk '{r+=$1; s+=$2; n++} END {printf "%.1f %.1f %d\n", r/1024, s/1024, n}')
echo "memory: $n processes, RSS $rss MiB, PSS $pss MiB"

for victim in redis-replica redis-sentinel-2 timescale-replica; do
  pid=$(sed -n 's/^pid=//p' "$rd/$victim.pid")
  t0=$(ms); kill -9 "$pid"
  until ! $H --run-dir "$rd" --report-json "$dir/hk.json" >/dev/null 2>&1 \
        && python3 -c "import json,sys;r=json.load(open('$dir/hk.json'));sys.exit(0 if any(e['service']=='$victim' for e in r['unhealthy_services']) else 1)"; do :; done
  t1=$(ms)
  echo "kill -9 $victim: named unhealthy after $(( (t1 - t0) / 1000000 )) ms"
  $P --execute --action up "${common[@]}" --output-file - >/dev/null 2>&1
done
