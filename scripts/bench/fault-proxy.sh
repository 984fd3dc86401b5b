#!/usr/bin/env bash
# fault-proxy benchmark: added round-trip latency (p50/p99) and one-stream throughput on loopback,
# no fault active, release build, against a direct connection. Exit 1 when a target is missed
# (added p50 <= 50 us, p99 <= 200 us, >= 1 GB/s).
#   BENCH_ROUNDTRIPS (default 20000)  BENCH_BYTES (default 2147483648)
#   BENCH_NO_SPLICE=1  copy through a buffer instead of splice(2) for bulk streams (comparison)
# On a VM whose idle vCPUs halt, each cross-CPU thread wakeup costs tens of microseconds, and the
# proxy adds two per round trip; `taskset -c 0 scripts/bench/fault-proxy.sh` shows the proxy's own
# cost without them. The script prints the load average so a reader can judge the figures.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec cargo bench --locked -p fault-proxy --bench proxy
