# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=dash
# The README's demo, the hotplug story: a machine with the minimal base tree (no e1000), udev,
# kmodd and a KMP repository (kmpbuild's packages of every other module of the kernel). The
# host hot-adds an Intel e1000 NIC through QMP; kmodd hears the uevent, resolves the device's
# modalias to e1000-kmp-amd64, installs and loads it, and the NIC gets a network interface.
# Lines starting with "DEMO" are the story scripts/demo.sh prints.
# vm-modules: base
# vm-repo: full-54
# vm-files: tests/vm/lib/kmodd-guest.sh:/vmtest/kmodd.sh /usr/lib/rpm/rpmrc:/usr/lib/rpm/rpmrc
# vm-files: /usr/lib/rpm/macros:/usr/lib/rpm/macros
# vm-timeout: 300
# vm-memory: 2048

. /vmtest/kmodd.sh

say() { echo "DEMO $*"; }

kver=$(uname -r)
say "guest kernel $kver booted under qemu (TCG) with the minimal base: $(find /lib/modules/$kver -name '*.ko*' | wc -l) modules, e1000 not among them"
check e1000-not-installed sh -c '! modprobe -n e1000 2>/dev/null'
if ! have kmodd; then
	skip kmodd "kmodd was not built (no \$BUILD/kmodd/kmodd)"
	exit 0
fi
kmodd_setup file || exit 0
say "KMP repository $(grep -o '[0-9]* packages' /tmp/refresh.log | head -n 1) at file://$KMODD_REPO; udevd and kmodd running"
say "$(kmodctl status | head -n 1)"
kmodctl daemon monitor >/tmp/monitor.log 2>&1 &
check kmodd-idle wait_until 120 sh -c 'kmodctl status --json | jq -e ".state == \"idle\"" >/dev/null'
mark ready-for-hotplug
say "host: QMP device_add driver=e1000 (an Intel NIC that no installed module drives)"

if wait_until 150 test -d /sys/module/e1000; then
	pass e1000-loaded-by-kmodd
else
	fail e1000-loaded-by-kmodd "no /sys/module/e1000 within 150 s of device_add"
	tail -n 20 "$KMODD_LOG"
fi
check e1000-driver-bound wait_until 30 sh -c 'ls /sys/bus/pci/drivers/e1000/ | grep -q "0000:"'
check e1000-netdev wait_until 30 sh -c 'ls /sys/bus/pci/drivers/e1000/0000:*/net/ | grep -q .'
wait_until 10 grep -q 'timeline:' /tmp/monitor.log
say "kmodd, as 'kmodctl daemon monitor' shows it:"
grep -a -A6 '^pci:v00008086d0000100E.*: installed' /tmp/monitor.log | grep -v '^--$' | sed 's/^/DEMO   /'
say "kmodd's journal line: $(grep -a 'loaded e1000; timeline' "$KMODD_LOG" | tail -n 1 | sed 's/^kmodd: //')"
dev=$(ls -d /sys/bus/pci/drivers/e1000/0000:* 2>/dev/null | head -n 1)
say "device $(basename "$dev"): driver e1000 from $(modinfo -F filename e1000 2>/dev/null), network interface: $(netdev_of e1000)"
say "kmodctl why e1000-kmp-amd64:"
kmodctl why e1000-kmp-amd64 2>&1 | sed 's/^/DEMO   /'
check kmodctl-verify kmodctl verify
kmodd_timeline 'loaded e1000;'
