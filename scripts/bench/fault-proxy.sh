#!/usr/bin/env bash
# fault-proxy benchmark: added round-trip latency (p50/p99) and one-stream throughput on loopback,
# no fault active, release build, against a direct connection. Exit 1 when a target is missed
# (added p50 <= 50 us, p99 <= 200 us, >= 1 GB/s).
#   BENCH_ROUNDTRIPS (default 20000)  BENCH_BYTES (default 2147483648)
#   BENCH_NO_SPLICE=1  copy through a buffer instead of splice(2) for bulk streams (comparison)
#   BENCH_PROXY_ARGS   extra fault-proxy arguments (e.g. "--spin-us 0", "--two-threads")
#   BENCH_PROXY_BIN    another fault-proxy binary (A/B comparisons)
# On a VM whose idle vCPUs halt, each cross-CPU thread wakeup costs tens of microseconds; a pump
# thread per direction would add two per round trip. The proxy therefore serves a connection from
# one thread, spinning (bounded, --spin-us, default 100) right after traffic, until a fault or a
# stream needs a pump per direction. The figures vary with the machine's load: the script prints
# the load average and the proxy's CPU time (round trips, 1 s idle, stream) so a reader can judge.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec cargo bench --locked -p fault-proxy --bench proxy
