# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=dash
# USB hotplug: the host hot-adds an xHCI controller (kmodd installs xhci_pci and the USB core
# from the repository), then a USB network adapter on it (kmodd installs its driver from the
# uevent of the new USB interface) and a network interface appears.
# vm-modules: base
# vm-repo: full-54
# vm-files: tests/vm/lib/kmodd-guest.sh:/vmtest/kmodd.sh /usr/lib/rpm/rpmrc:/usr/lib/rpm/rpmrc
# vm-files: /usr/lib/rpm/macros:/usr/lib/rpm/macros
# vm-timeout: 300
# vm-memory: 2048

. /vmtest/kmodd.sh

kmodd_setup file || exit 0
ls /sys/class/net >/tmp/net-before
mark ready-for-hotplug

if wait_until 150 test -d /sys/module/xhci_pci; then
	pass xhci-pci-loaded-by-kmodd
else
	fail xhci-pci-loaded-by-kmodd "no /sys/module/xhci_pci within 150 s of device_add"
	tail -n 10 "$KMODD_LOG"
fi
check usb-bus-present wait_until 30 sh -c 'ls /sys/bus/usb/devices/ | grep -q usb'
kmodd_timeline xhci_pci
mark xhci-ready

if wait_until 150 sh -c 'ls /sys/class/net | grep -v -x -f /tmp/net-before | grep -q .'; then
	pass usb-net-interface
else
	fail usb-net-interface "no new network interface within 150 s of device_add usb-net"
	tail -n 10 "$KMODD_LOG"
fi
check usbnet-loaded test -d /sys/module/usbnet
note "usb-net interface: $(ls /sys/class/net | grep -v -x -f /tmp/net-before | tr '\n' ' ')driven by $(basename "$(readlink /sys/class/net/"$(ls /sys/class/net | grep -v -x -f /tmp/net-before | head -n 1)"/device/driver)")"
check kmodctl-verify kmodctl verify
kmodd_timeline "usb:v0525pA4A2"
mark done
