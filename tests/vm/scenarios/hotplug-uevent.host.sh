# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# Host side of hotplug-uevent: hot-add an e1000 NIC once the guest's monitor runs, and
# remove it once the guest has seen it.
vm_wait_mark ready-for-hotplug 60 || exit 1
if vm_qmp device_add '{"driver": "e1000", "id": "nic1"}'; then
	host_pass qmp-device-add
else
	host_fail qmp-device-add "QMP device_add driver=e1000 failed"
	exit 0
fi
vm_wait_mark added 90 || exit 1
if vm_qmp device_del '{"id": "nic1"}' --wait-event DEVICE_DELETED --timeout 60; then
	host_pass qmp-device-del
else
	host_fail qmp-device-del "QMP device_del id=nic1: no DEVICE_DELETED event"
fi
