#!/usr/bin/env bash
# fault-proxy benchmark: added round-trip latency (p50/p99) and one-stream throughput on loopback,
# no fault active, release build, against a direct connection. Exit 1 when a target is missed
# (added p50 <= 50 us, p99 <= 200 us, >= 1 GB/s).
#   BENCH_ROUNDTRIPS (default 20000)  BENCH_BYTES (default 2147483648)
set -euo pipefail
cd "$(dirname "$0")/../.."
exec cargo bench --locked -p fault-proxy --bench proxy
