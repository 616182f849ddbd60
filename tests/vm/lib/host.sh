# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# Helpers for host hooks (tests/vm/scenarios/NAME.host.sh), sourced by bash before the hook.
# run.sh starts the hook right after qemu and exports:
#   VM_NAME      scenario name
#   VM_QMP       qemu's QMP unix socket
#   VM_CONSOLE   the guest's console log (ttyS0)
#   VM_RESULTS   the guest's results channel (ttyS1), "@@VM ..." lines
#   VM_HOST_RESULTS  where host_pass/host_fail/host_skip write
#   VM_LIB       tests/vm/lib
# The hook's exit status counts: non-zero is "FAIL NAME:host".

host_pass() { echo "@@VM PASS $1" >>"$VM_HOST_RESULTS"; }
host_fail() { local n=$1; shift; echo "@@VM FAIL $n: $*" >>"$VM_HOST_RESULTS"; return 1; }
host_skip() { local n=$1; shift; echo "@@VM SKIP $n: $*" >>"$VM_HOST_RESULTS"; }

# vm_wait_mark NAME [SECONDS=60]: wait until the guest ran 'mark NAME';
# 1 on timeout or when the scenario ended first.
vm_wait_mark() {
	local end=$((SECONDS + ${2:-60}))
	while [ $SECONDS -lt $end ]; do
		grep -qx "@@VM MARK $1" "$VM_RESULTS" 2>/dev/null && return 0
		grep -q '^@@VM END' "$VM_RESULTS" 2>/dev/null && break
		sleep 0.1
	done
	echo "host: guest mark '$1' not seen" >&2
	return 1
}

# vm_wait_console REGEX [SECONDS=60]: wait for an extended regex on the console.
vm_wait_console() {
	local end=$((SECONDS + ${2:-60}))
	while [ $SECONDS -lt $end ]; do
		grep -qE "$1" "$VM_CONSOLE" 2>/dev/null && return 0
		grep -q '^@@VM END' "$VM_RESULTS" 2>/dev/null && break
		sleep 0.1
	done
	echo "host: console never matched '$1'" >&2
	return 1
}

# vm_qmp COMMAND [ARGUMENTS-JSON] [--wait-event NAME] [--timeout S]: prints the reply.
vm_qmp() {
	python3 "$VM_LIB/qmp.py" "$VM_QMP" "$@"
}
