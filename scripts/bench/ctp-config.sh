#!/usr/bin/env bash
# Seconds for ctp-config to load a 10 MB CTP config (5 MB legacy: section above a 5 MB ctp:
# section, ~350k keys), best of 3, release build. Target: well under a second (issue 8 item 13;
# the line-scanning reader took 35 s for 60k keys).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo bench -p ctp-config --bench load --locked 2>/dev/null | grep '^ctp-config:'
