# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=dash
# kmodd killed in the middle of an install: kmodd runs with KMODD_TXN_CRASH_AT=install:indexing,
# so it gets SIGKILL (kill -9) once its first install has put the module files in place and
# started the indexes. Restarted, it rolls the transaction back, its start-up scan finds the
# devices still without a driver, installs again, and the hot-added e1000 is served too;
# 'kmodctl verify' is clean.
# vm-modules: base
# vm-repo: full-54
# vm-files: tests/vm/lib/kmodd-guest.sh:/vmtest/kmodd.sh /usr/lib/rpm/rpmrc:/usr/lib/rpm/rpmrc
# vm-files: /usr/lib/rpm/macros:/usr/lib/rpm/macros
# vm-timeout: 300
# vm-memory: 2048

. /vmtest/kmodd.sh

mkdir -p /etc/kmodd
printf '[Daemon]\nAllowedBuses=pci usb virtio\n' >/etc/kmodd/kmodd.conf
check repo-refresh kmodd_repo file || exit 0
check udevd-starts start_udevd || exit 0
check kmodd-starts kmodd_start KMODD_TXN_CRASH_AT=install:indexing
pid=$(kmodd_pid)
check kmodd-killed-mid-install wait_until 120 sh -c "! kill -0 $pid"
check transaction-pending test -e /var/lib/kmodd/journal
check verify-sees-pending sh -c '! kmodctl verify >/tmp/verify1 2>&1'
note "verify before the restart: $(tail -n 1 /tmp/verify1)"

check kmodd-restarts kmodd_start
check recovered-at-start wait_until 60 grep -q 'Recovered an interrupted transaction' "$KMODD_LOG"
note "$(grep -m1 'Recovered an interrupted' "$KMODD_LOG" | sed 's/^kmodd: //')"
check journal-gone wait_until 60 sh -c '! test -e /var/lib/kmodd/journal'
mark ready-for-hotplug
if wait_until 150 test -d /sys/module/e1000; then
	pass e1000-loaded-after-restart
else
	fail e1000-loaded-after-restart "no /sys/module/e1000 within 150 s of device_add"
	tail -n 10 "$KMODD_LOG"
fi
check kmodd-idle wait_until 120 sh -c 'kmodctl status --json | jq -e ".state == \"idle\" and .queued == 0" >/dev/null'
check kmodctl-verify-clean kmodctl verify
kmodd_timeline e1000
mark done
