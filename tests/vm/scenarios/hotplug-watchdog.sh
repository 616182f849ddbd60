# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=dash
# Watchdogs are never loaded automatically: the host hot-adds an i6300esb watchdog; kmodd finds
# its KMP in the repository (served over http on 127.0.0.1) but refuses it, saying it is
# blacklisted. 'kmodctl watchdog allow i6300esb' asks kmodd to rescan; then it is installed
# and loaded.
# vm-modules: base
# vm-repo: full-54
# vm-files: tests/vm/lib/kmodd-guest.sh:/vmtest/kmodd.sh /usr/lib/rpm/rpmrc:/usr/lib/rpm/rpmrc
# vm-files: /usr/lib/rpm/macros:/usr/lib/rpm/macros
# vm-timeout: 300
# vm-memory: 2048

. /vmtest/kmodd.sh

kmodd_setup http || exit 0
check watchdog-list sh -c 'kmodctl watchdog list | grep -q "i6300esb *blacklisted"'
check modprobe-blacklist grep -q '^blacklist i6300esb$' /run/modprobe.d/kmodd-watchdog.conf
mark ready-for-hotplug

if wait_until 150 grep -q 'i6300esb is a watchdog driver and blacklisted' "$KMODD_LOG"; then
	pass log-says-blacklisted
	note "$(grep -m1 'i6300esb is a watchdog' "$KMODD_LOG" | sed 's/^kmodd: //')"
else
	fail log-says-blacklisted "kmodd did not refuse i6300esb within 150 s"
	tail -n 10 "$KMODD_LOG"
fi
check i6300esb-not-loaded [ ! -d /sys/module/i6300esb ]
check i6300esb-not-installed sh -c '! kmodctl list --installed | grep -q i6300esb'

check watchdog-allow kmodctl watchdog allow i6300esb
check allow-unblacklists sh -c '! grep -q "^blacklist i6300esb$" /etc/modprobe.d/kmodd-watchdog.conf'
if wait_until 150 test -d /sys/module/i6300esb; then
	pass i6300esb-loaded-after-allow
else
	fail i6300esb-loaded-after-allow "no /sys/module/i6300esb within 150 s of the rescan"
	tail -n 10 "$KMODD_LOG"
fi
check watchdog-device wait_until 20 test -e /sys/class/watchdog/watchdog0
check others-still-blacklisted grep -q '^blacklist ib700wdt$' /etc/modprobe.d/kmodd-watchdog.conf
kmodd_timeline i6300esb
mark done
