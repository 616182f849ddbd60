# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# Host side of hotplug-virtio-net: hot-add a virtio-net NIC once kmodd runs in the guest.
vm_wait_mark ready-for-hotplug 200 || exit 1
if vm_qmp device_add '{"driver": "virtio-net-pci", "id": "vnet1"}' >/dev/null; then
	host_pass qmp-device-add-virtio-net
else
	host_fail qmp-device-add-virtio-net "QMP device_add driver=virtio-net-pci failed"
fi
