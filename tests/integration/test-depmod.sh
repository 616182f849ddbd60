#!/bin/bash
# kmodctl depmod: --full on both fixture trees equals kmod's depmod; --verify; the fallbacks to a
# full build; publishing through spares and the journal; bad input leaves the indexes untouched
# and names the file.
source "$(dirname "$0")/lib.sh"
# a private copy of the binary: a rebuild while the test runs does not disturb it
_bin=$(mktmp)
cp "$KMODCTL" "$_bin/kmodctl"
KMODCTL=$_bin/kmodctl

INDEXES=(modules.dep modules.dep.bin modules.alias modules.alias.bin modules.softdep
	modules.symbols modules.symbols.bin modules.devname modules.builtin.bin
	modules.builtin.alias.bin)

# same_as_depmod NAME ROOT KVER [DEPMOD-ARGS]: every index file equals what depmod writes for
# the tree
same_as_depmod() {
	local name=$1 root=$2 kver=$3 s f diffs=()
	shift 3
	s=$(mktmp)
	cp -al "$root/." "$s/"
	depmod "$@" -b "$s" "$kver" 2>/dev/null
	for f in "${INDEXES[@]}"; do
		cmp -s "$root/lib/modules/$kver/$f" "$s/lib/modules/$kver/$f" || diffs+=("$f")
	done
	rm -rf "$s"
	if [ ${#diffs[@]} -eq 0 ]; then pass "$name"; else fail "$name" "differs: ${diffs[*]}"; fi
}

snapshot() { (cd "$1" && sha256sum modules.* .kmodd-depmod.cache 2>/dev/null); }

for fx in full-54:$KVER54 full-53:$KVER53; do
	name=${fx%%:*}
	kver=${fx#*:}
	T=$(mktmp)
	fixture_copy "$name" "$T"
	if out=$("$KMODCTL" --root "$T" depmod --full "$kver" 2>&1); then
		same_as_depmod "full-$name" "$T" "$kver"
	else
		fail "full-$name" "$out"
	fi
	rm -rf "$T"
done

# --verify on the full tree: agrees, then names what differs
T=$(mktmp)
fixture_copy full-54 "$T"
D=$T/lib/modules/$KVER54
before=$(ls -A "$D")
check verify-clean "$KMODCTL" --root "$T" depmod --verify
check verify-writes-nothing [ "$(ls -A "$D")" = "$before" ]
sed -i '5s/$/ kernel\/bogus.ko/' "$D/modules.dep"
out=$("$KMODCTL" --root "$T" depmod --verify 2>&1)
rc=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q "modules.dep:5: differs"; then
	pass verify-differs
else
	fail verify-differs "rc=$rc: $out"
fi
rm -rf "$T"

# ---- fallbacks, on the small base tree plus full-54 modules ----
KSRC=$FIXTURES/full-54/lib/modules/$KVER54/kernel
new_tree() {
	local t
	t=$(mktmp)
	fixture_copy base-54 "$t"
	echo "$t"
}

# written by depmod (no kmodd cache): the first update reads the tree once, says so
T=$(new_tree)
D=$T/lib/modules/$KVER54
mkdir -p "$D/updates"
cp "$KSRC/drivers/net/ethernet/intel/e1000/e1000.ko" "$D/updates/"
out=$("$KMODCTL" --root "$T" depmod --add updates/e1000.ko 2>&1)
if echo "$out" | grep -q "Rebuilt all indexes.*no kmodd symbol cache"; then
	pass fallback-no-cache-says-so
else
	fail fallback-no-cache-says-so "$out"
fi
same_as_depmod fallback-no-cache "$T" "$KVER54"

# the next one is incremental
cp "$KSRC/net/802/stp.ko" "$D/updates/"
out=$("$KMODCTL" --root "$T" depmod --add "$D/updates/stp.ko" 2>&1)
if echo "$out" | grep -q "Rebuilt"; then fail incremental-after-cache "$out"; else pass incremental-after-cache; fi
same_as_depmod incremental-after-cache-identical "$T" "$KVER54"

# a torn cache (it is written in place and never synced): the next update reads the tree and
# says so, and the one after it is incremental again
dd if=/dev/zero of="$D/.kmodd-depmod.cache" bs=4096 seek=3 count=1 conv=notrunc status=none
cp "$KSRC/drivers/net/dummy.ko" "$D/updates/"
out=$("$KMODCTL" --root "$T" depmod --add updates/dummy.ko 2>&1)
if echo "$out" | grep -q "Rebuilt all indexes.*no kmodd symbol cache"; then
	pass torn-cache-says-so
else
	fail torn-cache-says-so "$out"
fi
same_as_depmod torn-cache "$T" "$KVER54"
rm -f "$D/updates/dummy.ko"
out=$("$KMODCTL" --root "$T" depmod --remove dummy 2>&1)
if echo "$out" | grep -q "Rebuilt"; then fail after-torn-cache-incremental "$out"; else pass after-torn-cache-incremental; fi
same_as_depmod after-torn-cache-identical "$T" "$KVER54"

# compressed modules: libkmod reads them (loaded for them alone)
xz -c "$KSRC/net/llc/llc.ko" >"$D/updates/llc.ko.xz"
zstd -q -c "$KSRC/drivers/net/mii.ko" >"$D/updates/mii.ko.zst"
out=$("$KMODCTL" --verbose --root "$T" depmod --add updates/llc.ko.xz updates/mii.ko.zst 2>&1)
rc=$?
if [ $rc -eq 0 ] && ! echo "$out" | grep -q "Rebuilt" &&
	! echo "$out" | grep -q "the fast update does not apply"; then
	pass compressed-incremental
else
	fail compressed-incremental "rc $rc: $out"
fi
same_as_depmod compressed-identical "$T" "$KVER54"
rm -f "$D/updates/llc.ko.xz" "$D/updates/mii.ko.zst"
check compressed-removed "$KMODCTL" --root "$T" depmod --remove llc mii
same_as_depmod compressed-removed-identical "$T" "$KVER54"

# a module dropped in without telling: the indexes disagree with the tree
cp "$KSRC/net/llc/llc.ko" "$D/updates/"
cp "$KSRC/drivers/net/mii.ko" "$D/updates/"
out=$("$KMODCTL" --root "$T" depmod --add updates/mii.ko 2>&1)
if echo "$out" | grep -q "Rebuilt all indexes.*disagree.*updates/llc.ko"; then
	pass fallback-disagree-says-so
else
	fail fallback-disagree-says-so "$out"
fi
same_as_depmod fallback-disagree "$T" "$KVER54"

# indexes missing
rm -f "$D"/modules.dep "$D"/modules.alias
rm -f "$D/updates/mii.ko"
out=$("$KMODCTL" --root "$T" depmod --remove mii 2>&1)
if echo "$out" | grep -q "Rebuilt all indexes.*missing"; then
	pass fallback-missing-says-so
else
	fail fallback-missing-says-so "$out"
fi
same_as_depmod fallback-missing "$T" "$KVER54"

# depmod.d of the root: search order and an override (depmod reads the same files with -C)
T2=$(new_tree)
D2=$T2/lib/modules/$KVER54
mkdir -p "$T2/etc/depmod.d" "$D2/updates" "$D2/extra" "$D2/weak-updates"
printf 'search extra updates weak-updates built-in\noverride stp * updates\n' >"$T2/etc/depmod.d/kmodd-test.conf"
for dir in updates extra weak-updates; do
	cp "$KSRC/drivers/net/mii.ko" "$KSRC/net/802/stp.ko" "$D2/$dir/"
done
cp "$KSRC/drivers/net/ethernet/intel/e1000/e1000.ko" "$D2/weak-updates/"
check depmod.d-full "$KMODCTL" --root "$T2" depmod --full "$KVER54"
same_as_depmod depmod.d-full-identical "$T2" "$KVER54" -C "$T2/etc/depmod.d"
if grep -q '^extra/mii.ko:' "$D2/modules.dep" && grep -q '^updates/stp.ko:' "$D2/modules.dep"; then
	pass depmod.d-search-and-override
else
	fail depmod.d-search-and-override "$(grep -E 'mii|stp' "$D2/modules.dep" | tr '\n' ' ')"
fi
rm -f "$D2/extra/mii.ko"
check depmod.d-incremental "$KMODCTL" --root "$T2" depmod --remove mii
same_as_depmod depmod.d-incremental-identical "$T2" "$KVER54" -C "$T2/etc/depmod.d"

# two updates at once serialise on the directory lock; both changes land
cp "$KSRC/net/802/p8022.ko" "$KSRC/net/802/psnap.ko" "$D2/updates/"
"$KMODCTL" --root "$T2" depmod --add updates/p8022.ko >/dev/null 2>&1 &
p1=$!
"$KMODCTL" --root "$T2" depmod --add updates/psnap.ko >/dev/null 2>&1 &
p2=$!
if wait $p1 && wait $p2; then
	same_as_depmod concurrent-updates "$T2" "$KVER54" -C "$T2/etc/depmod.d"
else
	fail concurrent-updates "an update failed"
fi

# ---- publishing through spares ----
# an update writes each changed index over its spare (the file the generation before last
# published) and exchanges the two: two updates later the same inodes are in place again
TS=$(new_tree)
DS=$TS/lib/modules/$KVER54
"$KMODCTL" --root "$TS" depmod --full "$KVER54" >/dev/null 2>&1
mkdir -p "$DS/updates"
ino_before=$(stat -c %i "$DS/modules.dep.bin")
cp "$KSRC/net/802/stp.ko" "$DS/updates/"
"$KMODCTL" --root "$TS" depmod --add updates/stp.ko >/dev/null 2>&1
ino_spare=$(stat -c %i "$DS/.kmodd-spare.modules.dep.bin")
rm "$DS/updates/stp.ko"
"$KMODCTL" --root "$TS" depmod --remove stp >/dev/null 2>&1
if [ "$ino_spare" = "$ino_before" ] && [ "$(stat -c %i "$DS/modules.dep.bin")" = "$ino_before" ]; then
	pass spare-reused
else
	fail spare-reused "modules.dep.bin was inode $ino_before, spare $ino_spare, now $(stat -c %i "$DS/modules.dep.bin")"
fi
same_as_depmod spare-reused-identical "$TS" "$KVER54"
if grep -aqx idle "$DS/.kmodd-depmod.journal" && [ -z "$(depmod_leftovers "$DS")" ]; then
	pass journal-idle
else
	fail journal-idle "$(depmod_leftovers "$DS")"
fi

# a process that still has the previous generation open (a long-lived libkmod context maps
# the indexes) keeps it as it was: that spare is not written over, a new one is made
exec 7<"$DS/modules.dep.bin"
held_ino=$(stat -L -c %i /proc/$$/fd/7)
held_sum=$(sha256sum </proc/$$/fd/7)
cp "$KSRC/net/802/stp.ko" "$DS/updates/"
"$KMODCTL" --root "$TS" depmod --add updates/stp.ko >/dev/null 2>&1
rm "$DS/updates/stp.ko"
"$KMODCTL" --root "$TS" depmod --remove stp >/dev/null 2>&1
now_sum=$(sha256sum </proc/$$/fd/7)
if [ "$now_sum" = "$held_sum" ] && [ "$(stat -c %i "$DS/modules.dep.bin")" != "$held_ino" ]; then
	pass spare-in-use-left-alone
else
	fail spare-in-use-left-alone "the file held open changed, or is in place again"
fi
exec 7<&-
same_as_depmod spare-in-use-identical "$TS" "$KVER54"

# an interrupted publish of the earlier version (temporaries and a journal that exists only
# during the publish): recovery finishes it
cp "$KSRC/net/802/stp.ko" "$DS/updates/"
s=$(mktmp)
cp -al "$TS/." "$s/"
for f in modules.dep modules.dep.bin; do rm "$s/lib/modules/$KVER54/$f"; done
depmod -b "$s" "$KVER54" 2>/dev/null
for f in modules.dep modules.dep.bin; do cp "$s/lib/modules/$KVER54/$f" "$DS/.kmodd-tmp.$f"; done
{
	echo "kmodd-depmod-journal 1"
	echo "generation 7"
	for f in modules.dep modules.dep.bin; do echo "$f $(stat -c %s "$DS/.kmodd-tmp.$f")"; done
	echo end
} >"$DS/.kmodd-depmod.journal"
out=$("$KMODCTL" --root "$TS" depmod --recover "$KVER54" 2>&1)
if echo "$out" | grep -q "Finished an interrupted" && cmp -s "$DS/modules.dep" "$s/lib/modules/$KVER54/modules.dep" &&
	[ -z "$(ls -A "$DS" | grep -E '^\.kmodd-tmp\.')" ] && [ ! -e "$DS/.kmodd-depmod.journal" ]; then
	pass recover-version-1
else
	fail recover-version-1 "$out; $(ls -A "$DS" | grep kmodd | tr '\n' ' ')"
fi
rm -rf "$s"
rm "$DS/updates/stp.ko"
"$KMODCTL" --root "$TS" depmod --full "$KVER54" >/dev/null 2>&1
same_as_depmod recover-version-1-then-full "$TS" "$KVER54"

# a journal that does not check (torn while it was written): nothing to finish, the next
# update goes on
printf 'kmodd-depmod-journal 2\ngeneration 3\ncommit\nmodules.dep 1 2\nend\nsum 00000000\n' \
	>"$DS/.kmodd-depmod.journal"
cp "$KSRC/net/802/stp.ko" "$DS/updates/"
check torn-journal-ignored "$KMODCTL" --root "$TS" depmod --add updates/stp.ko
same_as_depmod torn-journal-identical "$TS" "$KVER54"
rm "$DS/updates/stp.ko"

# ---- bad input: exit 1, the file named, nothing changed ----
bad_input() { # name expected-regex args...
	local name=$1 re=$2 before after out rc
	shift 2
	before=$(snapshot "$D")
	out=$("$KMODCTL" --root "$T" depmod "$@" 2>&1)
	rc=$?
	after=$(snapshot "$D")
	if crashed $rc "$out"; then
		fail "$name" "crashed: $out"
	elif [ $rc -ne 1 ]; then
		fail "$name" "exit $rc, expected 1: $out"
	elif ! echo "$out" | grep -qE "$re"; then
		fail "$name" "message does not match '$re': $out"
	elif [ "$before" != "$after" ]; then
		fail "$name" "indexes changed"
	elif [ -n "$(depmod_leftovers "$D")" ]; then
		fail "$name" "left behind: $(depmod_leftovers "$D")"
	else
		pass "$name"
	fi
}

echo "this is not an ELF file" >"$D/updates/bogus.ko"
bad_input bad-not-a-module "updates/bogus.ko: not a kernel module" --add updates/bogus.ko
rm -f "$D/updates/bogus.ko"
head -c 100 "$KSRC/drivers/net/mii.ko" >"$D/updates/trunc.ko"
bad_input bad-truncated-module "updates/trunc.ko: not a kernel module" --add updates/trunc.ko
rm -f "$D/updates/trunc.ko"

mkdir -p "$D/updates/a" "$D/updates/b"
cp "$KSRC/drivers/net/mii.ko" "$D/updates/a/"
cp "$KSRC/drivers/net/mii.ko" "$D/updates/b/"
bad_input bad-name-collision "updates/(a|b)/mii.ko: module name collision.*updates/(a|b)/mii.ko" \
	--add updates/a/mii.ko updates/b/mii.ko
rm -rf "$D/updates/a" "$D/updates/b"

bad_input bad-remove-absent "cannot remove module 'no_such_module': it is not in modules.dep" \
	--remove no-such-module
bad_input bad-remove-still-there "updates/e1000.ko: cannot remove module 'e1000': its file is still there" \
	--remove e1000
bad_input bad-add-missing "updates/nothing.ko: cannot add: ENOENT" --add updates/nothing.ko
bad_input bad-add-outside "/etc/passwd: not inside" --add /etc/passwd

cp "$KSRC/drivers/net/mii.ko" "$D/updates/"
printf 'garbage!' | dd of="$D/modules.alias.bin" bs=1 seek=0 conv=notrunc status=none
bad_input bad-corrupt-bin "modules.alias.bin: corrupt index \(bad magic\)" --add updates/mii.ko
truncate -s 5000 "$D/modules.dep.bin"
bad_input bad-truncated-bin "modules.(alias|dep).bin: corrupt index" --add updates/mii.ko
check full-repairs-corrupt "$KMODCTL" --root "$T" depmod --full
same_as_depmod full-repairs-corrupt-identical "$T" "$KVER54"

finish
