# SPDX-License-Identifier: LGPL-2.1-or-later
# Host side of hotplug-uevent: hot-add an e1000 NIC once the guest's monitor runs.
vm_wait_mark ready-for-hotplug 60 || exit 1
if vm_qmp device_add '{"driver": "e1000", "id": "nic1"}'; then
	host_pass qmp-device-add
else
	host_fail qmp-device-add "QMP device_add driver=e1000 failed"
fi
