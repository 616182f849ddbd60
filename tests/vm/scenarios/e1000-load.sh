# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=dash
# An e1000 NIC on the PCI bus: Debian's modprobe loads e1000 from the full fixture tree and
# the driver binds; kmodctl lists the running kernel's tree; systemd-udevd coldplugs.
# vm-modules: full
# vm-qemu: -netdev user,id=n0,restrict=on -device e1000,netdev=n0,romfile=
# vm-timeout: 90

kver=$(uname -r)
check kernel-release [ "$kver" = 6.1.0-54-amd64 ]
check e1000-not-loaded-at-boot [ ! -e /sys/module/e1000 ]
check e1000-device-present grep -qix 'PCI_ID=8086:100E' /sys/bus/pci/devices/*/uevent

if have kmodctl; then
	check kmodctl-modules sh -c "kmodctl --kernel '$kver' modules >/tmp/modules.txt"
	n_ko=$(find "/lib/modules/$kver" -name '*.ko*' | wc -l)
	n_listed=$(wc -l </tmp/modules.txt)
	check kmodctl-modules-count [ "$n_listed" -eq "$n_ko" ]
	check kmodctl-modules-lists-e1000 grep -Eq '^e1000 +[^ ]*/e1000\.ko$' /tmp/modules.txt
	check kmodctl-modules-json sh -c 'kmodctl modules --json >/tmp/modules.json'
	# one jq pass (4 s under TCG): type, number of modules, number named e1000
	check kmodctl-modules-json-parses sh -c "jq -r 'type, length, ([.[] | select(.name == \"e1000\")] | length)' /tmp/modules.json >/tmp/json.txt"
	check kmodctl-modules-json-is-array [ "$(sed -n 1p /tmp/json.txt)" = array ]
	check kmodctl-modules-json-count [ "$(sed -n 2p /tmp/json.txt)" = "$n_ko" ]
	check kmodctl-modules-json-lists-e1000 [ "$(sed -n 3p /tmp/json.txt)" = 1 ]
	# what kmodctl says about e1000 before the kernel gets to judge it: its modalias matches
	# the NIC and every symbol it needs has a provider with the CRC the kernel has
	check kmodctl-info-json sh -c 'kmodctl info e1000 --json >/tmp/e1000.json'
	check kmodctl-info-e1000-alias jq -e '.name == "e1000" and
		(.aliases | index("pci:v00008086d0000100Esv*sd*bc*sc*i*")) != null' /tmp/e1000.json
	check kmodctl-info-vermagic jq -e --arg k "$kver" '.vermagic | startswith($k + " ")' /tmp/e1000.json
	check kmodctl-info-requires-resolved jq -e '(.requires | length) > 0 and
		([.requires[] | select(.provider == null or .kernel_crc != .crc)] | length) == 0' \
		/tmp/e1000.json
else
	skip kmodctl "kmodctl was not built (no \$BUILD/kmodctl/kmodctl)"
fi

check modprobe-is-kmod sh -c 'modprobe --version | grep -q "^kmod version"'
check modprobe-e1000 modprobe e1000
check sys-module-e1000 [ -d /sys/module/e1000 ]
check e1000-driver-bound sh -c 'ls -l /sys/bus/pci/drivers/e1000/ | grep -q "0000:"'
check e1000-netdev sh -c 'ls /sys/bus/pci/drivers/e1000/0000:*/net/'

check udevd-starts start_udevd
iface=$(ls /sys/bus/pci/drivers/e1000/0000:*/net/ 2>/dev/null | head -n 1)
check udev-processed-netdev sh -c \
	"udevadm info --query=property --path=/sys/class/net/$iface | grep -q '^USEC_INITIALIZED='"
