# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# Host side of hotplug-usb: an xHCI controller, then a USB network adapter on it.
vm_wait_mark ready-for-hotplug 200 || exit 1
if vm_qmp device_add '{"driver": "qemu-xhci", "id": "xhci"}' >/dev/null; then
	host_pass qmp-device-add-xhci
else
	host_fail qmp-device-add-xhci "QMP device_add driver=qemu-xhci failed"
	exit 0
fi
vm_wait_mark xhci-ready 200 || exit 1
if vm_qmp device_add '{"driver": "usb-net", "id": "usbnet1", "bus": "xhci.0"}' >/dev/null; then
	host_pass qmp-device-add-usb-net
else
	host_fail qmp-device-add-usb-net "QMP device_add driver=usb-net failed"
fi
