#!/usr/bin/env bash
# Benchmark: SOP 8 failovers on netns hosts (h1..h3; root), release build. RUNS (default 5) runs per
# mode, each on a fresh topology (multihost down/up), acknowledgements replicated, fencing on.
# Prints, per mode, the medians of the client-visible write outage of Redis and of PostgreSQL, the
# PostgreSQL promotion time after the decision, and the acknowledged (replicated) and split-brain
# writes lost over all runs. Targets (docs/FAILOVER_RUNBOOK.md, from failover-facts.md): planned
# outage <= 1 s, unplanned Redis <= 2.5 s, partition <= 3.5 s, PostgreSQL promotion <= 0.5 s after
# the decision, 0 replicated-acknowledged writes lost in every mode. Exit 1 when a target is missed.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-5}
MODES=${MODES:-planned unplanned partition}
cargo build --release --locked -q -p multihost -p failover-orchestrator -p failover-verify
B=target/release
work=$(mktemp -d)
inv=configs/multihost/inventory.yaml
mh() { $B/multihost --inventory "$inv" --lock-dir "$work/locks" --output-file "$work/mh.env" --health-report "$work/mh.json" "$@"; }
cleanup() { mh --action down --execute >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
median() { sort -g | awk '{a[NR]=$1} END { if (NR==0) {print "nan"; exit} if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2 }'; }
val() { grep -E "^$1=" "$2" | head -1 | cut -d= -f2-; }
fail=0
for mode in $MODES; do
  : >"$work/$mode.tsv"
  for i in $(seq 1 "$RUNS"); do
    mh --action down --execute >/dev/null 2>&1
    mh --action up --execute >/dev/null 2>"$work/up.err" || { cat "$work/up.err" >&2; exit 2; }
    ev="$work/$mode-$i.env"
    $B/failover-orchestrator --env-config configs/deploy/environments/prodlike_multi_host.yaml \
      --inventory "$inv" --lock-file "$work/locks/multihost.lock" --mode "$mode" --execute --output-file "$ev" >/dev/null 2>"$work/drill.err" \
      || { echo "failover $mode run $i failed:" >&2; tail -3 "$work/drill.err" >&2; fail=1; }
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(val REDIS_OUTAGE_SECONDS "$ev")" "$(val PG_OUTAGE_SECONDS "$ev")" \
      "$(val PG_PROMOTION_SECONDS "$ev")" "$(val REDIS_LOST_REPLICATED "$ev")" "$(val PG_LOST_REPLICATED "$ev")" \
      "$(val SPLIT_BRAIN_WRITES "$ev")" >>"$work/$mode.tsv"
  done
  r=$(cut -f1 "$work/$mode.tsv" | median); p=$(cut -f2 "$work/$mode.tsv" | median)
  pr=$(cut -f3 "$work/$mode.tsv" | median)
  lost=$(awk -F'\t' '{s+=$4+$5} END {print s+0}' "$work/$mode.tsv")
  split=$(awk -F'\t' '{s+=$6} END {print s+0}' "$work/$mode.tsv")
  case $mode in planned) target=1.0 ;; unplanned) target=2.5 ;; partition) target=3.5 ;; esac
  echo "failover $mode ($RUNS runs): median outage Redis ${r} s, PostgreSQL ${p} s (target <= ${target} s); PostgreSQL promotion ${pr} s after the decision (target <= 0.5 s); replicated-acknowledged lost ${lost}, split-brain ${split} (target 0)"
  echo "  per run (redis_outage pg_outage pg_promotion redis_lost_repl pg_lost_repl split_brain):"
  sed 's/^/    /' "$work/$mode.tsv"
  awk -v r="$r" -v p="$p" -v t="$target" -v pr="$pr" -v l="$lost" -v s="$split" \
    'BEGIN { exit !(r <= t && p <= t && pr <= 0.5 && l == 0 && s == 0) }' || { echo "  $mode: a target is missed" >&2; fail=1; }
done
exit $fail
