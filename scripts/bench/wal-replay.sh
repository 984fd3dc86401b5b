#!/usr/bin/env bash
# Benchmark of wal-replay (SOP 4): replay speed and peak memory on a generated WAL.
# Target: >= 1,000,000 events/s on a WAL of 1,000,000 events. Exit 1 below target.
#   EVENTS=1000000 RUNS=5 scripts/bench/wal-replay.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
EVENTS=${EVENTS:-1000000}
RUNS=${RUNS:-5}
TARGET=${TARGET:-1000000}
DIR=${BENCH_DIR:-runtime/bench}

cargo build --release --locked -p wal-writer -p wal-replay >&2
mkdir -p "$DIR"
WAL=$DIR/wal_bench.wal
rm -f "$WAL"
target/release/wal-writer --wal-path "$WAL" --events "$EVENTS" --rate 0 --durability none \
  --buffer-bytes 1048576 --seed 1 >/dev/null 2>&1
bytes=$(stat -c %s "$WAL")
# The WAL must replay clean with every event, or the figure means nothing.
line=$(target/release/wal-replay "$WAL")
case "$line" in
  *" events=$EVENTS "*"parse_errors=0 state_rejected=0 "*) ;;
  *) echo "wal-replay bench: unexpected replay result: $line" >&2; exit 2 ;;
esac

if command -v hyperfine >/dev/null 2>&1; then
  hyperfine --warmup 1 --runs "$RUNS" --export-json "$DIR/wal-replay.hyperfine.json" \
    "target/release/wal-replay $WAL" >&2
  mean=$(jq -r '.results[0].mean' "$DIR/wal-replay.hyperfine.json")
  how="hyperfine, mean of $RUNS runs after 1 warmup"
else
  total=0
  target/release/wal-replay "$WAL" >/dev/null
  for _ in $(seq 1 "$RUNS"); do
    t0=$(date +%s%N); target/release/wal-replay "$WAL" >/dev/null; t1=$(date +%s%N)
    total=$((total + t1 - t0))
  done
  mean=$(awk -v t="$total" -v n="$RUNS" 'BEGIN { printf "%.6f", t / n / 1e9 }')
  how="date +%s%N loop, mean of $RUNS runs after 1 warmup"
fi

if [ -x /usr/bin/time ]; then
  peak_kb=$(/usr/bin/time -v target/release/wal-replay "$WAL" 2>&1 >/dev/null \
    | awk -F': ' '/Maximum resident set size/ { print $2 }')
  rss_how="/usr/bin/time -v"
else
  target/release/wal-replay "$WAL" >/dev/null & pid=$!
  peak_kb=0
  while kill -0 "$pid" 2>/dev/null; do
    v=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$v" ] && [ "$v" -gt "$peak_kb" ] && peak_kb=$v
    sleep 0.01
  done
  wait "$pid"
  rss_how="VmHWM polled every 10 ms"
fi

rate=$(awk -v e="$EVENTS" -v m="$mean" 'BEGIN { printf "%.0f", e / m }')
mean=$(awk -v m="$mean" 'BEGIN { printf "%.3f", m }')
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
peak_mib=$(awk -v k="$peak_kb" 'BEGIN { printf "%.1f", k / 1024 }')
verdict=$([ "$rate" -ge "$TARGET" ] && echo "meets" || echo "BELOW")
echo "wal-replay: $EVENTS events ($mib MiB) in ${mean}s ($how): $rate events/s, $verdict the target of $TARGET events/s; peak RSS $peak_mib MiB ($rss_how)"
[ "$verdict" = meets ]
