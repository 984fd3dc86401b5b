#!/usr/bin/env bash
# rollback_seconds of the demo service (target: under 2 s): a few real rollback drills with the
# release build, each measured by rollback-drill itself (monotonic, detection -> old release healthy).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${RUNS:-5}
target_s=2
cargo build --release --locked -q -p rollback-drill -p svc-ctl -p demo-service
dir=$(mktemp -d)
trap 'target/release/svc-ctl --run-dir "$dir/rd" stop >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
figures=()
for mode in health kill; do
  for i in $(seq "$runs"); do
    target/release/rollback-drill --execute --failure "$mode" --stop-after --run-dir "$dir/rd" \
      --lock-file "$dir/lock" --output-file "$dir/out.env" 2>/dev/null
    s=$(sed -n 's/^rollback_seconds=//p' "$dir/out.env")
    figures+=("$s")
    echo "rollback-drill --failure $mode run $i: rollback_seconds=$s"
  done
done
printf '%s\n' "${figures[@]}" | sort -g | awk -v t="$target_s" '
  { v[NR] = $1 } END {
    med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "rollback_seconds over %d drills: min %.6f median %.6f max %.6f (target < %s s)\n", NR, v[1], med, v[NR], t
    exit (v[NR] < t) ? 0 : 1
  }'
