# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=dash
# Helpers for VM scenarios, sourced (busybox sh) before tests/vm/scenarios/NAME.sh runs.
# Results go to /dev/ttyS1 as "@@VM PASS|FAIL|SKIP check[: why]" and are echoed on the console.

VM_RESULTS=/dev/ttyS1

_vm_emit() {
	echo "@@VM $*" >"$VM_RESULTS"
	echo "@@VM $*"
}

_vm_oneline() {
	printf '%s' "$*" | tr '\n\r\t' '   ' | cut -c1-300
}

# pass CHECK / fail CHECK WHY / skip CHECK WHY
pass() { _vm_emit "PASS $1"; }
fail() { local n=$1; shift; _vm_emit "FAIL $n: $(_vm_oneline "$*")"; return 1; }
skip() { local n=$1; shift; _vm_emit "SKIP $n: $(_vm_oneline "$*")"; }

# note TEXT: an information line the host prints as "# NAME: TEXT" after the checks
note() { _vm_emit "NOTE $(_vm_oneline "$*")"; }

# mark NAME: tell a host hook (vm_wait_mark NAME) that the guest reached this point
mark() { _vm_emit "MARK $1"; }

# check CHECK CMD...: run CMD, PASS if it succeeds, else FAIL with its last output line.
# Its output goes to the console (shown by the host when the scenario fails).
check() {
	local n=$1 out rc t0
	shift
	t0=$(cut -d' ' -f1 /proc/uptime)
	out=$("$@" 2>&1)
	rc=$?
	[ -n "$out" ] && printf '%s\n' "$out" | tail -n 20 | sed "s/^/[$n] /"
	echo "[$n] status $rc, $(awk -v a="$t0" '{ printf "%.2f", $1 - a }' /proc/uptime)s"
	if [ $rc -eq 0 ]; then
		pass "$n"
	else
		out=$(printf '%s\n' "$out" | tail -n 1)
		fail "$n" "'$*' exited $rc${out:+: $out}"
	fi
}

# wait_until SECONDS CMD...: poll CMD every 0.2 s until it succeeds; 1 on timeout.
wait_until() {
	local end=$(( $(cut -d. -f1 /proc/uptime) + $1 ))
	shift
	while ! "$@" >/dev/null 2>&1; do
		[ "$(cut -d. -f1 /proc/uptime)" -ge "$end" ] && return 1
		sleep 0.2
	done
}

# have CMD: is CMD in the initramfs (e.g. kmodctl before it is built)?
have() { command -v "$1" >/dev/null 2>&1; }

# start_udevd: run Debian's systemd-udevd, coldplug, settle. 0 when udev is ready.
start_udevd() {
	mkdir -p /run/udev
	/lib/systemd/systemd-udevd --daemon --resolve-names=never || return 1
	udevadm control --ping --timeout=30 || return 1
	udevadm trigger --type=subsystems --action=add &&
	udevadm trigger --type=devices --action=add &&
	udevadm settle --timeout=60
}
