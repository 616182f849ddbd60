#!/usr/bin/env bash
# The demo, the hotplug story: installs what it needs, builds, boots the fixture kernel 6.1.0-54
# under qemu (TCG) with the minimal base module tree, udev, kmodd and a KMP repository of every
# other module; hot-adds an Intel e1000 NIC through QMP, and shows kmodd installing and loading
# its driver from the repository, with the timeline of the event. Takes one to two minutes.
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

echo "Booting the fixture kernel in qemu (software emulation, one to two minutes)..."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
rc=0
BUILD=$here/build bash tests/vm/run.sh -v demo-e1000 >"$log" 2>&1 || rc=$?
grep -a '^\[demo-e1000\] DEMO' "$log" | sed -e 's/^\[demo-e1000\] DEMO //' -e 's/\r$//' || true
echo
grep -a -E '^(PASS|FAIL|SKIP) ' "$log" | sed 's/^/  /'
if [ $rc -eq 0 ]; then
	echo "Demo finished: kmodd installed e1000 from the repository when the NIC appeared; it drives the NIC."
else
	echo "Demo failed; the console log follows." >&2
	tail -n 40 "$log" >&2
fi
exit $rc
