# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=dash
# The hotplug story: the minimal base tree (no e1000), udevd, kmodd and kmpbuild's repository
# of the fixture served as file://. The host hot-adds an e1000 NIC through QMP; kmodd hears the
# uevent, resolves the modalias to e1000-kmp-amd64, installs and loads it, and the NIC gets a
# network interface. The timeline of the event is printed.
# vm-modules: base
# vm-repo: full-54
# vm-files: tests/vm/lib/kmodd-guest.sh:/vmtest/kmodd.sh /usr/lib/rpm/rpmrc:/usr/lib/rpm/rpmrc
# vm-files: /usr/lib/rpm/macros:/usr/lib/rpm/macros
# vm-timeout: 300
# vm-memory: 2048

. /vmtest/kmodd.sh

check no-e1000-in-tree sh -c '! modprobe -n e1000 2>/dev/null'
kmodd_setup file || exit 0
mark ready-for-hotplug

if wait_until 150 test -d /sys/module/e1000; then
	pass e1000-loaded-by-kmodd
else
	fail e1000-loaded-by-kmodd "no /sys/module/e1000 within 150 s of device_add"
	tail -n 20 "$KMODD_LOG"
fi
check e1000-installed-in-updates sh -c "ls /lib/modules/\$(uname -r)/updates/drivers/net/ethernet/intel/e1000/e1000.ko"
check e1000-driver-bound wait_until 30 sh -c 'ls /sys/bus/pci/drivers/e1000/ | grep -q "0000:"'
check e1000-netdev wait_until 30 sh -c 'ls /sys/bus/pci/drivers/e1000/0000:*/net/ | grep -q .'
note "e1000 NIC interface: $(netdev_of e1000)"
check kmodd-log-installed grep -q 'installed e1000-kmp-amd64' "$KMODD_LOG"
check kmodctl-why sh -c 'kmodctl why e1000-kmp-amd64 | grep -qi hotplug'
check kmodctl-verify kmodctl verify
kmodd_timeline e1000
mark done
