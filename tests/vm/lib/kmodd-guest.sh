# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=dash
# kmodd in the guest, for the hotplug scenarios (copied to /vmtest/kmodd.sh by their
# "vm-files:" header and sourced): the repository of "vm-repo:" at /srv/kmodd-repo served as
# file:// or over http on 127.0.0.1, udevd, kmodd, and the timeline of what kmodd did.

KMODD_REPO=/srv/kmodd-repo
KMODD_LOG=/tmp/kmodd.log

uptime_s() { cut -d' ' -f1 /proc/uptime; }

# kmodd_repo file|http: configure the repository and refresh its metadata
kmodd_repo() {
	local url t0
	mkdir -p /etc/kmodd/repos.d
	if [ "$1" = http ]; then
		busybox httpd -p 127.0.0.1:8080 -h "$KMODD_REPO" || return 1
		url=http://127.0.0.1:8080
	else
		url=file://$KMODD_REPO
	fi
	printf '[vm]\nname=kmpbuild repository of the fixture kernel\nbaseurl=%s\ngpgcheck=0\n' \
		"$url" >/etc/kmodd/repos.d/vm.repo
	t0=$(uptime_s)
	kmodctl repo refresh >/tmp/refresh.log 2>&1 || { cat /tmp/refresh.log; return 1; }
	note "repository $url: $(grep -o '[0-9]* packages' /tmp/refresh.log | head -n 1), refreshed in $(awk -v a="$t0" '{ printf "%.1f", $1 - a }' /proc/uptime) s (TCG)"
}

# kmodd_start [ENV=VALUE...]: start kmodd in the background, wait for its socket
kmodd_start() {
	rm -f /run/kmodd/io.kmodd
	env "$@" kmodd >>"$KMODD_LOG" 2>&1 &
	echo $! >/run/kmodd.pid
	wait_until 60 test -S /run/kmodd/io.kmodd
}

kmodd_pid() { cat /run/kmodd.pid 2>/dev/null; }

# kmodd_setup file|http [ENV=VALUE...]: repository, udevd, kmodd (with ENV). The guest's
# policy serves the buses of its hardware (pci, usb, virtio), so that the start-up scan does
# not look up every ACPI and CPU modalias of the machine.
kmodd_setup() {
	mkdir -p /etc/kmodd
	printf '[Daemon]\nAllowedBuses=pci usb virtio\n' >/etc/kmodd/kmodd.conf
	check repo-refresh kmodd_repo "$1" || return 1
	check udevd-starts start_udevd || return 1
	shift
	check kmodd-starts kmodd_start "$@" || return 1
	check kmodctl-status kmodctl status
}

# kmodd_timeline REGEX: the timeline kmodd logged for the event whose line matches REGEX (a
# module name or a modalias), as a note
kmodd_timeline() {
	local line
	line=$(grep -a -E "$1.*timeline:" "$KMODD_LOG" | tail -n 1)
	[ -n "$line" ] || line=$(grep -a -E "$1" "$KMODD_LOG" | tail -n 1)
	echo "TIMELINE $line"
	note "$(echo "$line" | sed 's/^kmodd: //') [TCG]"
}

# netdev_of DRIVER: the network interfaces of the devices bound to a PCI driver
netdev_of() {
	ls /sys/bus/pci/drivers/"$1"/0000:*/net/ 2>/dev/null | grep -v ':$' | grep -v '^$' | tr '\n' ' '
}
