#!/bin/bash
# Crash safety of kmodctl depmod: kill -9 at random points of an update, 200 times (DEPMOD_CRASH_RUNS);
# after `kmodctl depmod --recover` the index files are exactly the old or the new generation as
# kmod's depmod writes them, and no temporary file is left. Then a full disk (small tmpfs)
# during the write: the old generation stays, and a retry with space succeeds.
source "$(dirname "$0")/lib.sh"
# a private copy of the binary: a rebuild while the test runs does not disturb it
_bin=$(mktmp)
cp "$KMODCTL" "$_bin/kmodctl"
KMODCTL=$_bin/kmodctl

RUNS=${DEPMOD_CRASH_RUNS:-200}
KVER=$KVER54
KSRC=$FIXTURES/full-54/lib/modules/$KVER/kernel
INDEXES=(modules.dep modules.dep.bin modules.alias modules.alias.bin modules.softdep
	modules.symbols modules.symbols.bin modules.devname modules.builtin.bin
	modules.builtin.alias.bin)
# the change set: two new modules and an override of a base module another one needs
CHANGE_SRC=("$KSRC/drivers/net/ethernet/intel/e1000/e1000.ko" "$KSRC/drivers/net/mii.ko"
	"$KSRC/crypto/crct10dif_common.ko")
CHANGE_REL=(updates/e1000.ko updates/mii.ko updates/crypto/crct10dif_common.ko)
CHANGE_NAMES=(e1000 mii crct10dif_common)

put_files() { # root
	local i
	mkdir -p "$1/lib/modules/$KVER/updates/crypto"
	for i in "${!CHANGE_SRC[@]}"; do
		cp "${CHANGE_SRC[$i]}" "$1/lib/modules/$KVER/${CHANGE_REL[$i]}"
	done
}
drop_files() { # root
	local r
	for r in "${CHANGE_REL[@]}"; do rm -f "$1/lib/modules/$KVER/$r"; done
}

# reference generation: depmod's files for a tree, saved in dir
make_ref() { # root dir
	local s f
	s=$(mktmp)
	cp -a "$1/." "$s/"
	depmod -b "$s" "$KVER"
	mkdir -p "$2"
	for f in "${INDEXES[@]}"; do cp "$s/lib/modules/$KVER/$f" "$2/"; done
	rm -rf "$s"
}

# which generation the tree's index files are: old, new or mixed
generation_of() { # moddir refA refB
	local f a=1 b=1
	for f in "${INDEXES[@]}"; do
		cmp -s "$1/$f" "$2/$f" || a=0
		cmp -s "$1/$f" "$3/$f" || b=0
	done
	if [ $a = 1 ]; then echo old; elif [ $b = 1 ]; then echo new; else echo mixed; fi
}

temporaries() { depmod_leftovers "$1"; }

# ---- kill -9 loop ----
T=$(mktmp)
REFS=$(mktmp)
fixture_copy base-54 "$T"
D=$T/lib/modules/$KVER
"$KMODCTL" --root "$T" depmod --full "$KVER" 2>/dev/null || fail crash-setup "--full failed"
make_ref "$T" "$REFS/A"
put_files "$T"
make_ref "$T" "$REFS/B"
drop_files "$T"

# calibrate the kill window to how long an update takes here (sanitizer builds are slower)
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
put_files "$T"
t0=$(now_ms)
KMODD_DEPMOD_STEP_DELAY_US=750 "$KMODCTL" --root "$T" depmod "$KVER" --add "${CHANGE_REL[@]}" >/dev/null 2>&1
t1=$(now_ms)
drop_files "$T"
"$KMODCTL" --root "$T" depmod "$KVER" --remove "${CHANGE_NAMES[@]}" >/dev/null 2>&1
WINDOW=$(( (t1 - t0) * 5 / 4 ))
[ $WINDOW -lt 20 ] && WINDOW=20
echo "# an update takes about $((t1 - t0)) ms here; killing within $WINDOW ms"

state=A n_old=0 n_new=0 n_recovered=0 n_mixed=0 n_temps=0
start=$(date +%s)
for ((i = 1; i <= RUNS; i++)); do
	if [ $state = A ]; then
		put_files "$T"
		args=()
		for r in "${CHANGE_REL[@]}"; do args+=(--add "$r"); done
		old=$REFS/A new=$REFS/B
	else
		drop_files "$T"
		args=()
		for n in "${CHANGE_NAMES[@]}"; do args+=(--remove "$n"); done
		old=$REFS/B new=$REFS/A
	fi
	KMODD_DEPMOD_STEP_DELAY_US=$((RANDOM % 1500)) "$KMODCTL" --root "$T" depmod "$KVER" "${args[@]}" \
		>/dev/null 2>&1 &
	pid=$!
	ms=$((RANDOM % WINDOW))
	sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	out=$("$KMODCTL" --root "$T" depmod --recover "$KVER" 2>&1) || {
		fail "crash-recover-$i" "$out"
		break
	}
	echo "$out" | grep -q "Finished an interrupted" && n_recovered=$((n_recovered + 1))
	[ -n "$(temporaries "$D")" ] && n_temps=$((n_temps + 1))
	g=$(generation_of "$D" "$old" "$new")
	case $g in
	old)
		n_old=$((n_old + 1))
		# finish the change for real; it must still be exact
		"$KMODCTL" --root "$T" depmod "$KVER" "${args[@]}" >/dev/null 2>&1 ||
			{ fail "crash-retry-$i" "retry failed"; break; }
		[ "$(generation_of "$D" "$old" "$new")" = old ] &&
			{ fail "crash-retry-$i" "retry did not publish"; break; }
		;;
	new) n_new=$((n_new + 1)) ;;
	*)
		n_mixed=$((n_mixed + 1))
		fail "crash-$i" "index files are neither the old nor the new generation"
		break
		;;
	esac
	[ "$(generation_of "$D" "$old" "$new")" = new ] || { fail "crash-$i" "not at the new generation"; break; }
	[ $state = A ] && state=B || state=A
done
echo "# $RUNS kills in $(( $(date +%s) - start )) s: $n_old old, $n_new new ($n_recovered finished from the journal), $n_mixed mixed"
if [ $n_mixed -eq 0 ] && [ $n_temps -eq 0 ] && [ $((n_old + n_new)) -eq "$RUNS" ]; then
	pass "kill9-old-or-new($RUNS runs: $n_old old, $n_new new, $n_recovered rolled forward)"
else
	fail "kill9-old-or-new" "$n_mixed mixed, $n_temps with temporaries, $((n_old + n_new))/$RUNS runs"
fi
if [ $n_old -gt 0 ] && [ $n_recovered -gt 0 ]; then
	pass kill9-covers-both-phases
else
	fail kill9-covers-both-phases "$n_old kills before the commit, $n_recovered during the renames"
fi
check kill9-verify-after "$KMODCTL" --root "$T" depmod --verify "$KVER"

# ---- full disk ----
M=$(mktmp)
if ! mount -t tmpfs -o size=16m kmodd-depmod-test "$M" 2>/dev/null; then
	skip disk-full "cannot mount a tmpfs (not root?)"
	finish
fi
trap 'umount "$M" 2>/dev/null; _cleanup' EXIT
mkdir -p "$M/lib/modules"
cp -a "$FIXTURES/base-54/lib/modules/$KVER" "$M/lib/modules/"
DM=$M/lib/modules/$KVER
"$KMODCTL" --root "$M" depmod --full "$KVER" 2>/dev/null || fail disk-full-setup "--full failed"
make_ref "$M" "$REFS/FA"
put_files "$M"
make_ref "$M" "$REFS/FB"
ok=1
for free_kb in 0 4 8 16 32 48 64 96 128 136 140 144 148 152 156 160; do
	rm -f "$M/filler"
	avail=$(( $(stat -f -c '%a * %S' "$M") ))
	fill=$((avail - free_kb * 1024))
	[ $fill -gt 0 ] && fallocate -l $fill "$M/filler"
	out=$("$KMODCTL" --root "$M" depmod "$KVER" --add updates/e1000.ko --add updates/mii.ko \
		--add updates/crypto/crct10dif_common.ko 2>&1)
	rc=$?
	rm -f "$M/filler"
	g=$(generation_of "$DM" "$REFS/FA" "$REFS/FB")
	if crashed $rc "$out"; then
		fail "disk-full-${free_kb}k" "crashed: $out"
		ok=0
	elif [ $rc -ne 0 ] && { [ $g != old ] || ! echo "$out" | grep -q "ENOSPC"; }; then
		fail "disk-full-${free_kb}k" "failed without keeping the old generation ($g): $out"
		ok=0
	elif [ $rc -eq 0 ] && [ $g != new ]; then
		fail "disk-full-${free_kb}k" "succeeded but the files are $g"
		ok=0
	elif [ -n "$(temporaries "$DM")" ]; then
		fail "disk-full-${free_kb}k" "temporaries left: $(temporaries "$DM")"
		ok=0
	fi
	if [ $rc -eq 0 ]; then
		# published with the space there was: go back to the old generation for the next size
		echo "# ${free_kb} KiB free was enough"
		drop_files "$M"
		"$KMODCTL" --root "$M" depmod "$KVER" --remove e1000 mii crct10dif_common >/dev/null 2>&1
		put_files "$M"
	else
		echo "# ${free_kb} KiB free: refused, old generation kept ($(echo "$out" | head -n 1))"
	fi
done
[ $ok = 1 ] && pass disk-full-old-generation-kept
out=$("$KMODCTL" --root "$M" depmod "$KVER" --add updates/e1000.ko --add updates/mii.ko \
	--add updates/crypto/crct10dif_common.ko 2>&1)
if [ "$(generation_of "$DM" "$REFS/FA" "$REFS/FB")" = new ]; then
	pass disk-full-retry-with-space
else
	fail disk-full-retry-with-space "$out"
fi
umount "$M"
finish
