# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=dash
# The README's demo: a machine with the minimal base tree plus e1000 and an Intel e1000 NIC
# nobody drives yet. kmodctl shows what serves the device, kmod loads it, the NIC appears.
# Lines starting with "DEMO" are the story scripts/demo.sh prints.
# vm-modules: base e1000
# vm-qemu: -netdev user,id=n0,restrict=on -device e1000,netdev=n0,romfile=
# vm-timeout: 90

say() { echo "DEMO $*"; }

kver=$(uname -r)
say "guest kernel $kver booted under qemu (TCG); $(find /lib/modules/$kver -name '*.ko*' | wc -l) modules in its tree"
dev=$(grep -lix 'PCI_ID=8086:100E' /sys/bus/pci/devices/*/uevent | head -n 1)
dev=${dev%/uevent}
check e1000-device-present [ -n "$dev" ]
say "device $(basename "$dev"): MODALIAS=$(cat "$dev/modalias"), driver: $( [ -e "$dev/driver" ] && basename "$(readlink "$dev/driver")" || echo none)"

if have kmodctl; then
	check kmodctl-info sh -c "kmodctl info e1000 >/tmp/e1000.txt"
	say "kmodctl info e1000:"
	grep -E '^(filename|description|vermagic|signer|exports|requires):' /tmp/e1000.txt | sed 's/^/DEMO   /'
	n_bad=$(kmodctl info e1000 --json | jq '[.requires[] | select(.provider == null or .kernel_crc != .crc)] | length')
	say "  every one of its $(kmodctl info e1000 --json | jq '.requires | length') required symbols is exported by this kernel with the same CRC: $([ "$n_bad" = 0 ] && echo yes || echo "no ($n_bad differ)")"
	check kmodctl-crcs-match [ "$n_bad" = 0 ]
fi

say "modprobe e1000"
check modprobe-e1000 modprobe e1000
check sys-module-e1000 [ -d /sys/module/e1000 ]
check e1000-driver-bound [ -e "$dev/driver" ]
say "/sys/module/e1000: $( [ -d /sys/module/e1000 ] && echo present, initstate $(cat /sys/module/e1000/initstate) || echo missing)"
say "device $(basename "$dev"): driver: $( [ -e "$dev/driver" ] && basename "$(readlink "$dev/driver")" || echo none), network interface: $(ls "$dev/net" 2>/dev/null || echo none)"
