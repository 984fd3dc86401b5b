#!/usr/bin/env bash
# Benchmark: ctp-probe's timing precision against ctp-front-sim's own event log. Starts the sim and
# the probe (configs/sim/local.yaml's knobs on the sim's ports), takes both fronts down (SIGUSR1)
# and up (SIGUSR2) CYCLES times, then compares, per cycle:
#   detection = the probe's unhealthy state change  - the sim's first `sim.close` (front_down);
#   recovery  = the probe's healthy state change    - the later of the two fronts' accepted
#               `sim.login` after the down (the moment the sim wrote login_ok).
# Target: |recovery| <= 10 ms in every cycle (exit 1 otherwise). Release build by default;
# BIN=target/debug uses the debug binaries without building (make probe-check does).
set -euo pipefail
cd "$(dirname "$0")/../.."
CYCLES=${CYCLES:-20}
HOLD=${HOLD:-0.3}
if [ -z "${BIN:-}" ]; then
  cargo build --release --locked -q -p ctp-probe -p ctp-front-sim
  BIN=target/release
fi
work=$(mktemp -d)
sim_pid= probe_pid=
cleanup() {
  [ -n "$probe_pid" ] && kill "$probe_pid" 2>/dev/null
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
"$BIN/ctp-front-sim" --trader-port 0 --market-port 0 --heartbeat-ms 200 \
  --event-log "$work/sim.jsonl" --ports-file "$work/ready.json" >/dev/null &
sim_pid=$!
for _ in $(seq 1 200); do [ -s "$work/ready.json" ] && break; sleep 0.05; done
[ -s "$work/ready.json" ] || { echo "ctp-probe bench: the simulator did not start" >&2; exit 2; }
tp=$(jq -r .trader_port "$work/ready.json")
mp=$(jq -r .market_port "$work/ready.json")
sed -e "s/41201/$tp/" -e "s/41211/$mp/" configs/sim/local.yaml >"$work/local.yaml"
export CTP_SIM_PASSWORD="${CTP_SIM_PASSWORD:-bench-password}"
"$BIN/ctp-probe" "$work/local.yaml" --monitor-seconds -1 --health-interval-ms 1000 \
  --log-file "$work/probe.log" --events-file "$work/probe_events.jsonl" 2>"$work/probe.err" &
probe_pid=$!

# Wait until the number of `state=<s>` lines that follow a change reaches $2 (deadline 20 s).
changes() { [ -f "$work/probe.log" ] || { echo 0; return; }; awk -v s="$1" '{ split($3, a, "="); if (a[2] == s && prev != s) n++; prev = a[2] } END { print n + 0 }' "$work/probe.log"; }
wait_changes() {
  for _ in $(seq 1 2000); do
    [ "$(changes "$1")" -ge "$2" ] && return 0
    kill -0 "$probe_pid" 2>/dev/null || { echo "ctp-probe bench: the probe died" >&2; cat "$work/probe.err" >&2; exit 2; }
    sleep 0.01
  done
  echo "ctp-probe bench: timed out waiting for $1 #$2" >&2; exit 2
}
wait_changes healthy 1
for k in $(seq 1 "$CYCLES"); do
  kill -USR1 "$sim_pid"; wait_changes unhealthy "$k"
  sleep "$HOLD"
  kill -USR2 "$sim_pid"; wait_changes healthy $((k + 1))
done
kill -TERM "$probe_pid"
rc=0; wait "$probe_pid" || rc=$?
probe_pid=
[ "$rc" -eq 0 ] || { echo "ctp-probe bench: the probe exited $rc" >&2; cat "$work/probe.err" >&2; exit 2; }

jq -n -r --slurpfile p "$work/probe_events.jsonl" --slurpfile s "$work/sim.jsonl" --arg cycles "$CYCLES" '
  def ms: . / 1e6 | . * 1000 | round / 1000;
  ($p | map(select(.kind == "probe.state"))) as $st
  | ($st | map(select(.state == "unhealthy") | .ts_ns)) as $unh
  | ($st | map(select(.state == "healthy") | .ts_ns) | .[1:]) as $hl
  | ($s | map(select(.kind == "sim.state" and .state == "down" and .front == "trader") | .ts_ns)) as $downs
  | [range(0; $cycles | tonumber) as $k
     | ($downs[$k]) as $d
     | ($s | map(select(.kind == "sim.close" and .reason == "front_down" and .ts_ns > $d) | .ts_ns) | min) as $close
     | ([("trader", "market") as $f
         | $s | map(select(.kind == "sim.login" and .accepted and .front == $f and .ts_ns > $d) | .ts_ns) | min]
        | max) as $login
     | {cycle: ($k + 1), detect: (($unh[$k] - $close) | ms), recover: (($hl[$k] - $login) | ms),
        outage: (($hl[$k] - $unh[$k]) | ms)}] as $rows
  | ($rows[] | "cycle \(.cycle): detection \(.detect) ms, recovery \(.recover) ms (probe - sim), outage seen \(.outage) ms"),
    "max |detection| \($rows | map(.detect | fabs) | max) ms, max |recovery| \($rows | map(.recover | fabs) | max) ms over \($rows | length) cycles (target |recovery| <= 10 ms)",
    (if ($rows | map(.recover | fabs) | max) <= 10 then "ctp-probe precision: PASS" else "ctp-probe precision: FAIL" end)
' | tee "$work/summary.txt"
grep -q 'precision: PASS' "$work/summary.txt" || exit 1
