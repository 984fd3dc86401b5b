#!/usr/bin/env bash
# Install a ctp-ops .deb into a scratch root and run a drill from the installed binaries, with no
# cargo on PATH and not from a checkout: WAL drill + verifier, evidence index, session-guard on the
# installed calendar, `man wal-drill` from the installed pages, completions present.
#   scripts/deb-test.sh target/debian/ctp-ops_0.1.0_amd64.deb      (make deb-test)
set -euo pipefail
deb=${1:?usage: deb-test.sh <ctp-ops.deb>}
root=$(mktemp -d /tmp/ctp-ops-deb.XXXXXX)
trap 'rm -rf "$root"' EXIT
dpkg-deb --info "$deb" >/dev/null
dpkg-deb --extract "$deb" "$root"
work="$root/var/tmp/work"
mkdir -p "$work" "$root/home"
path="$root/usr/bin:/usr/sbin:/usr/bin:/sbin:/bin"
run() { (cd "$work" && env -i HOME="$root/home" PATH="$path" USER=ops LANG=C.UTF-8 "$@"); }
fail() { echo "deb-test: FAIL: $*" >&2; exit 1; }

run sh -c 'command -v cargo' >/dev/null && fail "cargo is on PATH"
for f in usr/bin/wal-drill usr/bin/evidence usr/share/man/man1/wal-drill.1 \
  usr/share/bash-completion/completions/wal-drill etc/ctp-ops/calendar/cn-futures-2026.yaml \
  var/lib/ctp-ops/results; do
  [ -e "$root/$f" ] || fail "$f not in the package"
done
results="$work/results"
run wal-drill --execute --wal-path "$work/wal/events.wal" --repeat 2 --rate 500 \
  --output-file "$results/wal_recovery_result.env" >/dev/null
run wal-verify --evidence-file "$results/wal_recovery_result.env" --max-rto-seconds 10
run evidence index --results-dir "$results" | grep -q '| 4 wal | .* | PASS |' || fail "evidence index"
run evidence seal --results-dir "$results" >/dev/null
run evidence check-seal --results-dir "$results" | grep -qx 'overall: PASS' || fail "check-seal"
# Saturday 10:00 +08:00: no session, drills may run (calendar from the installed configs).
run session-guard --calendar "$root/etc/ctp-ops/calendar/cn-futures-2026.yaml" \
  --at 2026-03-14T10:00:00+08:00 >/dev/null
# Without --calendar it finds <root>/etc/ctp-ops (beside <root>/usr/bin): a holiday added there shows.
sed -i 's/^holidays:$/holidays:\n  - { from: "2026-03-10", to: "2026-03-10", name: "deb-test day" }/' \
  "$root/etc/ctp-ops/calendar/cn-futures-2026.yaml"
run session-guard --at 2026-03-10T10:00:00+08:00 | grep -q 'holiday: deb-test day' \
  || fail "session-guard did not read the installed calendar"
# Without --output-file / --results-dir an installed drill writes under /var/lib/ctp-ops/results.
run wal-drill 2>&1 | grep -q 'would write /var/lib/ctp-ops/results/wal_recovery_result.env' \
  || fail "wal-drill dry run: not the installed results folder"
MANPATH="$root/usr/share/man" MANWIDTH=80 man wal-drill 2>/dev/null | grep -q 'wal-drill' \
  || fail "man wal-drill"
echo "deb-test: PASS ($(basename "$deb"): drill, verifier, index, seal, session-guard and results folder found by the install layout, man page from the installed files)"
