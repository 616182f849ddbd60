#!/usr/bin/env bash
# kmpbuild options and tree shapes.
# --kabi-in-name: package names carry the kernel ABI ("<module>-kmp-<flavour>-<kabi>", kabi =
# release without the flavour, '-' as '_': 6.1.0-54-amd64 -> 6.1.0_54), the plain name stays a
# versioned provide, dependencies name the KABI packages, and libsolv resolves the repository.
# Also: --version/--release/--flavour, --firmware-requires, compressed and updates/ modules,
# the progress line on a TTY.
source "$(dirname "$0")/lib.sh"

T=$(mktmp)
SOLVECHECK=${SOLVECHECK:-$BUILD/kmpbuild/kmp-solvecheck}
root=$FIXTURES/base-54
moddir=$root/lib/modules/$KVER54

out=$("$KMPBUILD" --root "$root" --kernel "$KVER54" --base /dev/null --kabi-in-name \
	--out "$T/kabi" -q 2>&1)
check build test $? -eq 0
n_mod=$(wc -l <"$moddir/modules.dep")
n_kabi=$(ls "$T/kabi/x86_64" | grep -c -- '-kmp-amd64-6\.1\.0_54-6\.1\.190-1\.x86_64\.rpm$')
check "names-carry-kabi($n_kabi)" test "$n_kabi" -eq "$n_mod"
pkg=$(ls "$T"/kabi/x86_64/squashfs-kmp-amd64-6.1.0_54-*.rpm 2>/dev/null)
check name-tag test "$(rpm -qp --qf '%{NAME} %{VERSION} %{RELEASE}' "$pkg" 2>/dev/null)" = \
	"squashfs-kmp-amd64-6.1.0_54 6.1.190 1"
check plain-name-provided grep -qx 'squashfs-kmp-amd64 = 6.1.190-1' <(rpm -qp --provides "$pkg" 2>/dev/null)
# a dependency on another KMP names its KABI package
dep_pkg=$(ls "$T"/kabi/x86_64/ext4-kmp-amd64-6.1.0_54-*.rpm 2>/dev/null)
check requires-kabi-names grep -qx 'jbd2-kmp-amd64-6.1.0_54' <(rpm -qp --requires "$dep_pkg" 2>/dev/null)
if "$SOLVECHECK" "$T/kabi" "$moddir/modules.dep" amd64 -6.1.0_54 >"$T/solve" 2>&1; then
	pass "resolves($(tail -n 1 "$T/solve" | cut -d: -f1))"
else
	fail resolves "$(grep -E '^(MISMATCH|PROBLEM|MISSING)' "$T/solve" | head -n 2 | tr '\n' ' ')$(tail -n 1 "$T/solve")"
fi

"$KMPBUILD" --root "$root" --kernel "$KVER54" --base /dev/null --out "$T/plain" -q >/dev/null 2>&1
check plain-names test -f "$T/plain/x86_64/squashfs-kmp-amd64-6.1.190-1.x86_64.rpm"
if "$SOLVECHECK" "$T/plain" "$moddir/modules.dep" amd64 >"$T/solve2" 2>&1; then
	pass "plain-resolves($(tail -n 1 "$T/solve2" | cut -d: -f1))"
else
	fail plain-resolves "$(tail -n 1 "$T/solve2")"
fi

# --version/--release and --flavour override what the tree says
"$KMPBUILD" --root "$root" --kernel "$KVER54" --base /dev/null --out "$T/ovr" -q \
	--version 2.5 --release 7.1 --flavour default >/dev/null 2>&1
pkg=$T/ovr/x86_64/squashfs-kmp-default-2.5-7.1.x86_64.rpm
check overrides test -f "$pkg"
check flavour-in-ksym grep -q '^ksym(default:' <(rpm -qp --requires "$pkg" 2>/dev/null)
check flavour-in-modalias grep -q '^modalias(kernel-default:' <(rpm -qp --supplements "$pkg" 2>/dev/null)

# --firmware-requires: Requires: firmware(<file>) for modinfo's firmware lines. A base-54
# copy with e100 (which names firmware) and its dependency mii added.
mkdir "$T/fwroot"
fixture_copy base-54 "$T/fwroot"
fwmod=kernel/drivers/net/ethernet/intel/e100.ko
full=$FIXTURES/full-54/lib/modules/$KVER54
for m in $fwmod kernel/drivers/net/mii.ko; do
	mkdir -p "$(dirname "$T/fwroot/lib/modules/$KVER54/$m")"
	ln "$full/$m" "$T/fwroot/lib/modules/$KVER54/$m"
	grep "^$m:" "$full/modules.dep" >>"$T/fwroot/lib/modules/$KVER54/modules.dep"
done
"$KMPBUILD" --root "$T/fwroot" --kernel "$KVER54" --base /dev/null --out "$T/fw" -q \
	--firmware-requires >/dev/null 2>&1
modinfo -F firmware "$full/$fwmod" | sed 's/.*/firmware(&)/' | sort -u >"$T/fw.want"
rpm -qp --requires "$T"/fw/x86_64/e100-kmp-amd64-*.rpm | grep '^firmware(' | sort >"$T/fw.got"
if [ -s "$T/fw.want" ]; then
	check "firmware-requires($(wc -l <"$T/fw.want"))" diff "$T/fw.want" "$T/fw.got"
else
	skip firmware-requires "e100 names no firmware here"
fi
"$KMPBUILD" --root "$T/fwroot" --kernel "$KVER54" --base /dev/null --out "$T/nofw" -q >/dev/null 2>&1
check no-firmware-by-default test -z "$(rpm -qp --requires "$T"/nofw/x86_64/e100-kmp-amd64-*.rpm | grep '^firmware(')"

# other tree shapes: an xz-compressed module and one from updates/ (depmod re-run on the copy)
mkdir "$T/shapes"
fixture_copy base-54 "$T/shapes"
md=$T/shapes/lib/modules/$KVER54
xz -c "$md/kernel/fs/squashfs/squashfs.ko" >"$md/kernel/fs/squashfs/squashfs.ko.xz"
rm "$md/kernel/fs/squashfs/squashfs.ko"
mkdir -p "$md/updates/fs/overlayfs"
mv "$md/kernel/fs/overlayfs/overlay.ko" "$md/updates/fs/overlayfs/overlay.ko"
if depmod -b "$T/shapes" "$KVER54" 2>/dev/null &&
	"$KMPBUILD" --root "$T/shapes" --kernel "$KVER54" --base /dev/null --out "$T/shapes.repo" -q \
		>"$T/shapes.out" 2>&1; then
	p=$(ls "$T"/shapes.repo/x86_64/squashfs-kmp-amd64-*.rpm)
	check compressed-module-payload test "$(rpm2cpio "$p" | cpio -t --quiet 2>/dev/null)" = \
		"./lib/modules/$KVER54/updates/fs/squashfs/squashfs.ko.xz"
	check compressed-module-kmod grep -qx 'kmod(squashfs.ko)' <(rpm -qp --provides "$p")
	check compressed-module-ksyms test "$(rpm -qp --requires "$p" | grep -c '^ksym(')" -gt 10
	p=$(ls "$T"/shapes.repo/x86_64/overlay-kmp-amd64-*.rpm)
	check updates-module-payload test "$(rpm2cpio "$p" | cpio -t --quiet 2>/dev/null)" = \
		"./lib/modules/$KVER54/updates/fs/overlayfs/overlay.ko"
else
	fail tree-shapes "$(tail -n 2 "$T/shapes.out" | tr '\n' ' ')"
fi

# a progress line on a TTY (script(1) provides one), none without
if command -v script >/dev/null; then
	script -qec "$KMPBUILD --root $root --kernel $KVER54 --base /dev/null --out $T/tty" \
		"$T/typescript" >/dev/null 2>&1
	if grep -q "kmpbuild: $n_mod/$n_mod modules" "$T/typescript"; then
		pass progress-on-tty
	else
		fail progress-on-tty "$(tr '\r' '\n' <"$T/typescript" | tail -n 2 | tr '\n' ' ')"
	fi
	out=$("$KMPBUILD" --root "$root" --kernel "$KVER54" --base /dev/null --out "$T/notty" 2>&1)
	check no-progress-without-tty test -z "$(grep 'modules$' <<<"$out")"
else
	skip progress-on-tty "script(1) not installed"
fi

finish
