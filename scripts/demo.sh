#!/usr/bin/env bash
# The demo: installs what it needs, builds, boots the fixture kernel 6.1.0-54 under qemu (TCG)
# with the minimal base module tree plus e1000 and an Intel e1000 NIC, and shows kmodctl
# describing the driver and the kernel loading it. Takes about a minute.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

[ -n "${SKIP_DEPS:-}" ] || bash scripts/deps.sh
bash scripts/fixtures.sh >/dev/null
buildlog=$(mktemp)
if [ ! -f build/build.ninja ] && ! meson setup build >"$buildlog" 2>&1 ||
	! meson compile -C build >"$buildlog" 2>&1; then
	tail -n 30 "$buildlog" >&2
	echo "demo: the build failed (log above)" >&2
	exit 1
fi
rm -f "$buildlog"

echo "Booting the fixture kernel in qemu (software emulation, about 30 s)..."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
rc=0
BUILD=$here/build bash tests/vm/run.sh -v demo-e1000 >"$log" 2>&1 || rc=$?
grep -a '^\[demo-e1000\] DEMO' "$log" | sed -e 's/^\[demo-e1000\] DEMO //' -e 's/\r$//' || true
echo
grep -a -E '^(PASS|FAIL|SKIP) ' "$log" | sed 's/^/  /'
if [ $rc -eq 0 ]; then
	echo "Demo finished: e1000 is loaded and drives the NIC."
else
	echo "Demo failed; the console log follows." >&2
	tail -n 40 "$log" >&2
fi
exit $rc
