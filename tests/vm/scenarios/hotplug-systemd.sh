# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=dash
# systemd as PID 1 with the installed units: kmodd.socket listens, the udev rule
# (rules/80-kmodd.rules) starts kmodd.service for a device nobody drives, kmodd (Type=notify,
# the hardened unit) exits when idle (IdleExitSec) and a client connecting to the socket starts
# it again; a hot-added e1000 starts it through udev and is served.
# vm-modules: base
# vm-repo: full-54
# vm-files: tests/vm/lib/kmodd-guest.sh:/vmtest/kmodd.sh /usr/lib/rpm/rpmrc:/usr/lib/rpm/rpmrc
# vm-files: /usr/lib/rpm/macros:/usr/lib/rpm/macros tests/vm/lib/systemd:/vmtest/systemd
# vm-files: $BUILD/kmodd/kmodd.service:/vmtest/systemd/kmodd.service
# vm-files: units/kmodd.socket:/vmtest/systemd/kmodd.socket
# vm-files: rules/80-kmodd.rules:/lib/udev/rules.d/80-kmodd.rules
# vm-files: /lib/systemd/system/systemd-udevd.service:/lib/systemd/system/systemd-udevd.service
# vm-files: /lib/systemd/system/systemd-udevd-control.socket:/lib/systemd/system/systemd-udevd-control.socket
# vm-files: /lib/systemd/system/systemd-udevd-kernel.socket:/lib/systemd/system/systemd-udevd-kernel.socket
# vm-files: /lib/systemd/system/systemd-udev-trigger.service:/lib/systemd/system/systemd-udev-trigger.service
# vm-timeout: 300
# vm-memory: 2048

. /vmtest/kmodd.sh
KMODD_LOG=/run/kmodd/kmodd.log

check pid1-is-systemd sh -c '[ "$(cat /proc/1/comm)" = systemd ]'
check kmodd-socket-listening sh -c 'systemctl is-active kmodd.socket && test -S /run/kmodd/io.kmodd'
mkdir -p /etc/kmodd
printf '[Daemon]\nAllowedBuses=pci usb virtio\nIdleExitSec=5\n' >/etc/kmodd/kmodd.conf
check repo-refresh kmodd_repo file
# the start-up coldplug may already have started kmodd through the rule (the PIIX4 function)
check udev-rule-started-kmodd wait_until 60 sh -c 'grep -q "kmodd.*running" /run/kmodd/kmodd.log || systemctl is-active kmodd.service'
check kmodd-idle-exit wait_until 120 sh -c '! systemctl is-active kmodd.service >/dev/null'
note "after the idle exit: kmodd.service $(systemctl is-active kmodd.service), kmodd.socket $(systemctl is-active kmodd.socket)"
check socket-activation sh -c 'kmodctl status | grep -q kmodd'
check activated-service-running systemctl is-active kmodd.service
check status-says-activated sh -c 'kmodctl status --json | jq -e .socketActivated'
check kmodd-idle-exit-again wait_until 60 sh -c '! systemctl is-active kmodd.service >/dev/null'
mark ready-for-hotplug
if wait_until 150 test -d /sys/module/e1000; then
	pass e1000-loaded-by-udev-started-kmodd
else
	fail e1000-loaded-by-udev-started-kmodd "no /sys/module/e1000 within 150 s of device_add"
	tail -n 20 "$KMODD_LOG"
	systemctl status kmodd.service 2>&1 | tail -n 10
fi
check kmodctl-verify kmodctl verify
kmodd_timeline 'loaded e1000;'
