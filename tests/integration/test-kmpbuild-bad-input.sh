#!/usr/bin/env bash
# kmpbuild on bad input: each case fails with one clear message naming the file and the fix
# (or takes its documented fallback), and never leaves repository metadata behind.
# Trees are copies of the small base-54 fixture (41 modules) with --base /dev/null, so every
# module becomes a KMP.
source "$(dirname "$0")/lib.sh"

T=$(mktmp)
SOLVECHECK=${SOLVECHECK:-$BUILD/kmpbuild/kmp-solvecheck}
moddir_of() { echo "$1/lib/modules/$KVER54"; }

tree() { # name -> a fresh copy of base-54
	local d=$T/$1
	mkdir -p "$d"
	fixture_copy base-54 "$d"
	echo "$d"
}
# replace a hardlinked module by a private copy before changing it
private() { cp --remove-destination "$(readlink -f "$1")" "$1.tmp" && mv "$1.tmp" "$1"; }

build() { # root out [args...] -> sets out, rc
	local root=$1 dest=$2
	shift 2
	out=$("$KMPBUILD" --root "$root" --kernel "$KVER54" --base /dev/null --out "$dest" -q "$@" 2>&1)
	rc=$?
}

# expect_fail NAME PATTERN... : rc 1, one error line matching every pattern, no repomd.xml
expect_fail() {
	local name=$1 dest=$2
	shift 2
	if crashed "$rc" "$out"; then
		fail "$name" "crashed (rc $rc): $(tail -n 2 <<<"$out" | tr '\n' ' ')"
		return
	fi
	if [ "$rc" -ne 1 ]; then
		fail "$name" "exit status $rc, expected 1: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
		return
	fi
	local p
	for p in "$@"; do
		if ! grep -q -- "$p" <<<"$out"; then
			fail "$name" "message lacks '$p': $out"
			return
		fi
	done
	if [ -e "$dest/repodata/repomd.xml" ]; then
		fail "$name" "repository metadata written despite the error"
		return
	fi
	echo "# $name: $out"
	pass "$name"
}

e1000=kernel/drivers/net/ethernet/intel/e1000/e1000.ko
victim=kernel/fs/squashfs/squashfs.ko

# 1. a module without vermagic
r=$(tree novermagic)
private "$(moddir_of "$r")/$victim"
perl -0777 -pi -e 's/vermagic=/xermagic=/g' "$(moddir_of "$r")/$victim"
build "$r" "$T/out1"
expect_fail no-vermagic "$T/out1" "$victim" "no vermagic" "depmod"

# 2a. a corrupt module: random bytes
r=$(tree corrupt)
head -c 65536 /dev/urandom >"$(moddir_of "$r")/$victim.new"
mv "$(moddir_of "$r")/$victim.new" "$(moddir_of "$r")/$victim"
build "$r" "$T/out2"
expect_fail corrupt-ko "$T/out2" "$victim" "not a valid kernel module"

# 2b. a truncated module: ELF header intact, sections cut off
r=$(tree truncated)
head -c 3000 "$(readlink -f "$(moddir_of "$r")/$victim")" >"$(moddir_of "$r")/$victim.new"
mv "$(moddir_of "$r")/$victim.new" "$(moddir_of "$r")/$victim"
build "$r" "$T/out2b"
expect_fail truncated-ko "$T/out2b" "$victim"

# 2c. a module of another kernel in the tree
r=$(tree foreign)
src53=$FIXTURES/full-53/lib/modules/$KVER53/$victim
if [ -f "$src53" ]; then
	cp --remove-destination "$src53" "$(moddir_of "$r")/$victim"
	build "$r" "$T/out2c"
	expect_fail foreign-vermagic "$T/out2c" "$victim" "$KVER53"
else
	skip foreign-vermagic "$src53 missing"
fi

# 3. no Module.symvers: a clear error, then the documented fallback (--no-symvers)
r=$(tree nosymvers)
rm -f "$r/usr/src/linux-headers-$KVER54/Module.symvers"
build "$r" "$T/out3"
expect_fail no-symvers "$T/out3" "Module.symvers" "--symvers" "--no-symvers"
build "$r" "$T/out3b" --no-symvers
if [ "$rc" -eq 0 ] && [ -f "$T/out3b/repodata/repomd.xml" ]; then
	pass no-symvers-fallback-builds
else
	fail no-symvers-fallback-builds "rc $rc: $out"
fi
# the fallback still resolves: every KMP installs on the derived base
if "$SOLVECHECK" "$T/out3b" "$(moddir_of "$r")/modules.dep" amd64 >"$T/solve3" 2>&1; then
	pass no-symvers-fallback-resolves
else
	fail no-symvers-fallback-resolves "$(tail -n 1 "$T/solve3")"
fi
# a malformed Module.symvers named by --symvers
printf '0x1234\tbroken line\n' >"$T/bad.symvers"
build "$(tree badsymvers)" "$T/out3c" --symvers "$T/bad.symvers"
expect_fail bad-symvers "$T/out3c" "bad.symvers"

# 4. an output directory holding another repository
r=$(tree out)
mkdir -p "$T/other/Packages"
createrepo_c -q "$T/other" >/dev/null 2>&1
cp -a "$T/other/repodata" "$T/other.before"
build "$r" "$T/other"
expect_fail refuse-other-repo "$T/other/nonexistent" "already holds another repository" "--force"
if diff -r "$T/other.before" "$T/other/repodata" >/dev/null; then
	pass refuse-other-repo-untouched
else
	fail refuse-other-repo-untouched "the foreign repodata changed"
fi
build "$r" "$T/other" --force
if [ "$rc" -eq 0 ] && grep -q 'kernel-amd64' <(zcat "$T"/other/repodata/*-primary.xml.gz); then
	pass force-replaces
else
	fail force-replaces "rc $rc: $out"
fi
# our own repository of the same kernel is rebuilt in place without --force ...
build "$r" "$T/other"
check rebuild-own-repo test "$rc" -eq 0
# ... one of another flavour is refused
build "$r" "$T/other" --flavour default
expect_fail refuse-other-flavour "$T/other/nonexistent" "another kernel or flavour"

# 5. a tree without modules.dep
r=$(tree nodep)
rm -f "$(moddir_of "$r")/modules.dep"
build "$r" "$T/out5"
expect_fail no-modules-dep "$T/out5" "modules.dep" "depmod"

# 6. usage errors
out=$("$KMPBUILD" --root "$FIXTURES/base-54" 2>&1)
rc=$?
expect_fail no-out "$T/none" "--out"
out=$("$KMPBUILD" --root "$T/nonexistent" --kernel "$KVER54" --out "$T/out6" 2>&1)
rc=$?
expect_fail no-tree "$T/out6" "$T/nonexistent"

finish
