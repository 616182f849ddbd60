# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# Host side of hotplug-watchdog: hot-add an i6300esb watchdog once kmodd runs in the guest.
vm_wait_mark ready-for-hotplug 200 || exit 1
if vm_qmp device_add '{"driver": "i6300esb", "id": "wd1"}' >/dev/null; then
	host_pass qmp-device-add-i6300esb
else
	host_fail qmp-device-add-i6300esb "QMP device_add driver=i6300esb failed"
fi
