#!/usr/bin/env bash
# Precision of a whole reconnect drill against ctp-front-sim's own log. Runs reconnect-evidence on
# the embedded defaults (local simulator behind fault-proxy, ctp-probe, fault-inject) with REPEAT
# rounds of the five scenarios, then compares, for every window whose fault made the probe
# unhealthy and that recovered after the clear:
#   the drill's recovery moment (drill.json healthy_again_ts_ns = slo-report's first healthy line
#   at or after the clear), minus
#   the moment the simulator wrote the login_ok that made the probe healthy again
#   (reconnect_core::crosscheck, recorded by the drill as sim_agreement_ms).
# Target: |difference| <= 10 ms for every window (exit 1 otherwise). Also prints how many windows
# slo-report counted (a window is not counted when the probe was not healthy at the apply moment
# fault-inject recorded). Uses the debug binaries (BIN=target/debug, built if missing): this is a
# precision check, not a speed benchmark.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPEAT=${REPEAT:-3}
BIN=${BIN:-target/debug}
[ -x "$BIN/reconnect-evidence" ] && [ -x "$BIN/fault-inject" ] || cargo build --workspace --bins --locked -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
scen=$(for _ in $(seq 1 "$REPEAT"); do printf 'disconnect,latency,jitter,loss,combined,'; done)
p() { echo "$work/$1"; }
"$BIN/reconnect-evidence" --config configs/sim/local.yaml --execute-faults --local-ports free \
  --scenarios "${scen%,}" --hold-ms 400 --delay-ms 1000 --heartbeat-timeout-ms 300 \
  --health-interval-ms 100 --settle-ms 500 --drill-id bench --runtime-dir "$(p runtime)" \
  --probe-log "$(p probe.log)" --event-log "$(p events.jsonl)" --report-file "$(p report.md)" \
  --health-json-file "$(p h.json)" --health-markdown-file "$(p h.md)" \
  --alert-json-file "$(p a.json)" --alert-markdown-file "$(p a.md)" \
  --samples-csv "$(p samples.csv)" --timeline-svg "$(p timeline.svg)" >"$(p out.txt)" 2>"$(p err.txt)" \
  || { rc=$?; cat "$(p err.txt)" >&2; [ "$rc" -eq 1 ] || exit 2; }
run="$work/runtime/reconnect/bench"
# The cross-check itself is reconnect-core's (reconnect-evidence records it per window as
# sim_agreement_ms); this script only summarises it.
jq -n -r --slurpfile d "$run/drill.json" '
  def ms: . * 1000 | round / 1000;
  [$d[0].scenarios[] | select(.sim_agreement_ms != null)
   | {scenario, recovery: ((.healthy_again_ts_ns - .clear_effective_ts_ns) / 1e6 | ms),
      diff: (.sim_agreement_ms | ms)}] as $rows
  | ($rows[] | "\(.scenario): recovery \(.recovery) ms, drill - simulator login \(.diff) ms"),
    "windows with an outage: \($rows | length) of \($d[0].scenarios | length); max |diff| \($rows | map(.diff | fabs) | max) ms (target <= 10 ms)",
    (if ($rows | length) > 0 and ($rows | map(.diff | fabs) | max) <= 10 then "reconnect-evidence precision: PASS" else "reconnect-evidence precision: FAIL" end)
' | tee "$work/summary.txt"
grep -E 'SLO (met|not met)' "$(p err.txt)" || true
grep -q 'precision: PASS' "$work/summary.txt"
