# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=dash
# A virtio-net NIC hot-added through QMP: its drivers are in the minimal base, so udev loads
# them and kmodd installs nothing for it; a network interface appears.
# The repository is served over http on 127.0.0.1. Then, with a small uevent buffer and kmodd
# stopped (SIGSTOP), a burst of change uevents overflows the socket: kmodd sees ENOBUFS and
# rescans the devices.
# vm-modules: base
# vm-repo: full-54
# vm-files: tests/vm/lib/kmodd-guest.sh:/vmtest/kmodd.sh /usr/lib/rpm/rpmrc:/usr/lib/rpm/rpmrc
# vm-files: /usr/lib/rpm/macros:/usr/lib/rpm/macros
# vm-timeout: 300
# vm-memory: 2048

. /vmtest/kmodd.sh

kmodd_setup http KMODD_UEVENT_RCVBUF=4096 || exit 0
check kmodd-idle-before wait_until 120 sh -c 'kmodctl status --json | jq -e ".state == \"idle\" and .queued == 0" >/dev/null'
ls /sys/class/net >/tmp/net-before
kmodctl list --installed >/tmp/installed-before 2>&1
mark ready-for-hotplug

check virtio-net-loaded wait_until 150 test -d /sys/module/virtio_net
check virtio-net-interface wait_until 60 sh -c 'ls /sys/class/net | grep -v -x -f /tmp/net-before | grep -q .'
note "virtio-net interface: $(ls /sys/class/net | grep -v -x -f /tmp/net-before | tr '\n' ' ')"
check kmodd-idle-after wait_until 120 sh -c 'kmodctl status --json | jq -e ".state == \"idle\" and .queued == 0" >/dev/null'
check kmodd-installed-nothing-for-virtio sh -c '! grep -a "1AF4d00001000\|virtio:d00000001" "$KMODD_LOG" | grep -q installed'
check nothing-installed-for-it sh -c 'kmodctl list --installed 2>&1 | diff /tmp/installed-before -'

# the uevent socket overflows while kmodd is stopped: it rescans instead of stalling
rescans=$(kmodctl status --json | jq .counters.rescans)
kill -STOP "$(kmodd_pid)"
udevadm trigger --action=change
udevadm settle --timeout=60
kill -CONT "$(kmodd_pid)"
check enobufs-seen wait_until 60 sh -c 'kmodctl status --json | jq -e ".counters.enobufs >= 1" >/dev/null'
check enobufs-rescan wait_until 60 sh -c "kmodctl status --json | jq -e '.counters.rescans > $rescans' >/dev/null"
check enobufs-logged grep -q 'uevent socket overflowed; rescanning' "$KMODD_LOG"
check alive-after-overflow kmodctl status
mark done
