# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# Host side of hotplug-systemd: hot-add an e1000 NIC once kmodd has exited idle.
vm_wait_mark ready-for-hotplug 200 || exit 1
if vm_qmp device_add '{"driver": "e1000", "id": "nic1"}' >/dev/null; then
	host_pass qmp-device-add-e1000
else
	host_fail qmp-device-add-e1000 "QMP device_add driver=e1000 failed"
fi
