# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=dash
# PCI hotplug through QMP: the host hook adds an e1000 NIC while systemd-udevd runs; the
# guest sees the kernel's add uevent with the e1000 modalias and udev loads the driver. Then
# the host removes it again (ACPI eject) and the guest sees the remove uevent.
# vm-modules: base e1000
# vm-timeout: 90

check udevd-starts start_udevd
udevadm monitor --kernel --property --subsystem-match=pci >/tmp/uevents 2>&1 &
check no-e1000-before [ ! -e /sys/module/e1000 ]
wait_until 10 grep -q 'monitor will print' /tmp/uevents
mark ready-for-hotplug

if wait_until 60 grep -q '^MODALIAS=pci:v00008086d0000100E' /tmp/uevents; then
	pass add-uevent-modalias
	check add-uevent-action grep -q '^ACTION=add' /tmp/uevents
	echo "vmtest: $(grep -m1 '^MODALIAS=' /tmp/uevents)"
else
	fail add-uevent-modalias "no add uevent with MODALIAS=pci:v00008086d0000100E* within 60s"
	cat /tmp/uevents
fi
udevadm settle --timeout=30
check udev-loaded-e1000 wait_until 30 test -d /sys/module/e1000
check e1000-driver-bound wait_until 30 sh -c 'ls -l /sys/bus/pci/drivers/e1000/ | grep -q "0000:"'

mark added
if wait_until 60 grep -q '^ACTION=remove' /tmp/uevents; then
	pass remove-uevent
else
	fail remove-uevent "no remove uevent within 60s of device_del"
fi
check e1000-unbound sh -c '! ls -l /sys/bus/pci/drivers/e1000/ | grep -q "0000:"'
