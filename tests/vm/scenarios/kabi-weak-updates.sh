# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=dash
# KABI verdicts proven by the kernel: 24 modules of 6.1.0-53 (no dependencies) installed as
# /lib/modules/6.1.0-53-amd64/updates/ in a 6.1.0-54 guest. `kmodctl audit` decides in the
# guest; at least 10 must be compatible and 10 not. `kmodctl kernel add` links the compatible
# ones into weak-updates/ and modprobe loads every one of them through the link; every
# incompatible one, loaded by insmod, is refused by the kernel ("disagrees about version of
# symbol" in dmesg). Then audit sees them loaded, and the kernel tainted (-53's signing key is
# not -54's).
# vm-modules: base
# vm-timeout: 150
# vm-files: $FIXTURES/full-53/lib/modules/6.1.0-53-amd64/kernel/lib/crc7.ko:/lib/modules/6.1.0-53-amd64/updates/lib/crc7.ko
# vm-files: $FIXTURES/full-53/lib/modules/6.1.0-53-amd64/kernel/lib/crc8.ko:/lib/modules/6.1.0-53-amd64/updates/lib/crc8.ko
# vm-files: $FIXTURES/full-53/lib/modules/6.1.0-53-amd64/kernel/lib/crc-itu-t.ko:/lib/modules/6.1.0-53-amd64/updates/lib/crc-itu-t.ko
# vm-files: $FIXTURES/full-53/lib/modules/6.1.0-53-amd64/kernel/lib/math/cordic.ko:/lib/modules/6.1.0-53-amd64/updates/lib/math/cordic.ko
# vm-files: $FIXTURES/full-53/lib/modules/6.1.0-53-amd64/kernel/lib/crypto/libarc4.ko:/lib/modules/6.1.0-53-amd64/updates/lib/crypto/libarc4.ko
# vm-files: $FIXTURES/full-53/lib/modules/6.1.0-53-amd64/kernel/crypto/cast_common.ko:/lib/modules/6.1.0-53-amd64/updates/crypto/cast_common.ko
# vm-files: $FIXTURES/full-53/lib/modules/6.1.0-53-amd64/kernel/crypto/twofish_common.ko:/lib/modules/6.1.0-53-amd64/updates/crypto/twofish_common.ko
# vm-files: $FIXTURES/full-53/lib/modules/6.1.0-53-amd64/kernel/crypto/blowfish_common.ko:/lib/modules/6.1.0-53-amd64/updates/crypto/blowfish_common.ko
# vm-files: $FIXTURES/full-53/lib/modules/6.1.0-53-amd64/kernel/fs/nls/nls_cp850.ko:/lib/modules/6.1.0-53-amd64/updates/fs/nls/nls_cp850.ko
# vm-files: $FIXTURES/full-53/lib/modules/6.1.0-53-amd64/kernel/fs/nls/mac-roman.ko:/lib/modules/6.1.0-53-amd64/updates/fs/nls/mac-roman.ko
# vm-files: $FIXTURES/full-53/lib/modules/6.1.0-53-amd64/kernel/fs/smb/common/cifs_md4.ko:/lib/modules/6.1.0-53-amd64/updates/fs/smb/common/cifs_md4.ko
# vm-files: $FIXTURES/full-53/lib/modules/6.1.0-53-amd64/kernel/drivers/media/tuners/tuner-types.ko:/lib/modules/6.1.0-53-amd64/updates/drivers/media/tuners/tuner-types.ko
# vm-files: $FIXTURES/full-53/lib/modules/6.1.0-53-amd64/kernel/crypto/fcrypt.ko:/lib/modules/6.1.0-53-amd64/updates/crypto/fcrypt.ko
# vm-files: $FIXTURES/full-53/lib/modules/6.1.0-53-amd64/kernel/net/sched/em_cmp.ko:/lib/modules/6.1.0-53-amd64/updates/net/sched/em_cmp.ko
# vm-files: $FIXTURES/full-53/lib/modules/6.1.0-53-amd64/kernel/net/sched/em_u32.ko:/lib/modules/6.1.0-53-amd64/updates/net/sched/em_u32.ko
# vm-files: $FIXTURES/full-53/lib/modules/6.1.0-53-amd64/kernel/crypto/camellia_generic.ko:/lib/modules/6.1.0-53-amd64/updates/crypto/camellia_generic.ko
# vm-files: $FIXTURES/full-53/lib/modules/6.1.0-53-amd64/kernel/crypto/serpent_generic.ko:/lib/modules/6.1.0-53-amd64/updates/crypto/serpent_generic.ko
# vm-files: $FIXTURES/full-53/lib/modules/6.1.0-53-amd64/kernel/net/ipv4/tcp_highspeed.ko:/lib/modules/6.1.0-53-amd64/updates/net/ipv4/tcp_highspeed.ko
# vm-files: $FIXTURES/full-53/lib/modules/6.1.0-53-amd64/kernel/net/ipv4/tcp_illinois.ko:/lib/modules/6.1.0-53-amd64/updates/net/ipv4/tcp_illinois.ko
# vm-files: $FIXTURES/full-53/lib/modules/6.1.0-53-amd64/kernel/net/ipv4/tcp_scalable.ko:/lib/modules/6.1.0-53-amd64/updates/net/ipv4/tcp_scalable.ko
# vm-files: $FIXTURES/full-53/lib/modules/6.1.0-53-amd64/kernel/crypto/aes_ti.ko:/lib/modules/6.1.0-53-amd64/updates/crypto/aes_ti.ko
# vm-files: $FIXTURES/full-53/lib/modules/6.1.0-53-amd64/kernel/crypto/ecb.ko:/lib/modules/6.1.0-53-amd64/updates/crypto/ecb.ko
# vm-files: $FIXTURES/full-53/lib/modules/6.1.0-53-amd64/kernel/crypto/keywrap.ko:/lib/modules/6.1.0-53-amd64/updates/crypto/keywrap.ko
# vm-files: $FIXTURES/full-53/lib/modules/6.1.0-53-amd64/kernel/crypto/ofb.ko:/lib/modules/6.1.0-53-amd64/updates/crypto/ofb.ko

have kmodctl || { skip kmodctl "kmodctl was not built"; exit 0; }
K=$(uname -r)

check audit-runs sh -c "kmodctl audit --kernel $K --json >/tmp/audit.json; [ \$? = 6 ]"
jq -r '.kernels[0].modules[] | select(.source == "candidate") | "\(.name) \(.verdict) \(.file)"' \
	/tmp/audit.json >/tmp/verdicts
cat /tmp/verdicts
n_ok=$(grep -c ' ok ' /tmp/verdicts)
n_bad=$(grep -c -v ' ok ' /tmp/verdicts)
if [ "$n_ok" -ge 10 ] && [ "$n_bad" -ge 10 ]; then
	pass ten-and-ten
else
	fail ten-and-ten "$n_ok compatible, $n_bad incompatible"
fi

check kernel-add kmodctl kernel add "$K" --no-install
dmesg -c >/dev/null
while read -r name verdict file; do
	if [ "$verdict" = ok ]; then
		check "link-$name" sh -c "modprobe --show-depends $name | grep -q weak-updates"
		check "loads-$name" modprobe "$name"
		check "loaded-$name" test -d "/sys/module/$name"
	else
		if insmod "/$file" 2>/dev/null; then
			fail "refused-$name" "the kernel loaded it"
		elif dmesg | grep -q "^.*$name: disagrees about version of symbol"; then
			pass "refused-$name"
		else
			fail "refused-$name" "no 'disagrees about version of symbol' in dmesg: $(dmesg | tail -n 2)"
		fi
		check "not-loaded-$name" test ! -d "/sys/module/$name"
	fi
done </tmp/verdicts

kmodctl audit --kernel "$K" --json >/tmp/audit2.json
check audit-sees-loaded sh -c "[ \$(jq '[.kernels[0].modules[] | select(.source == \"weak-updates\" and .loaded)] | length' /tmp/audit2.json) = $n_ok ]"
check audit-sees-taint sh -c "[ \$(jq '.kernels[0].tainted' /tmp/audit2.json) -gt 0 ]"
