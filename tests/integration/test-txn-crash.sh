#!/bin/bash
# kill -9 at every state-changing step of an install and of a remove (KMODD_TXN_CRASH_AT, the
# steps listed in libkmodd/transaction.h), three times each: once with e1000's KMP recovered
# by `kmodctl recover`, once with three KMPs (one requiring another) recovered the same way,
# once with e1000 recovered by the next writing command; an upgrade; kill -9 at random moments
# (some inside depmod's publishing). Afterwards `kmodctl verify` is clean,
# no journal or temporary is left, and the module tree, its indexes and the installed
# packages are exactly the state before the transaction or the state after: before up to
# the database commit, after from it on.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-txn.sh"

INSTALL_STEPS=(locked downloaded verified journal mkdir extract-partial extracted placing
	rename-first renamed indexing indexed db-uncommitted committed finished journal-removed
	loaded)
REMOVE_STEPS=(locked journal unloaded placing rename-first renamed indexing indexed
	db-uncommitted committed finished journal-removed)
AFTER_COMMIT="committed finished journal-removed loaded"

W=$(mktmp)
# templates: A = base, B1 = e1000 installed and loaded, B3 = e1000, mii, 8139too (loaded)
mkdir -p "$W/A" "$W/B1" "$W/B3"
txn_root "$W/A"
cp -a "$W/A/." "$W/B1/"
cp -a "$W/A/." "$W/B3/"
SET1=("$(pkg e1000)")
SET3=("$(pkg e1000)" "$(pkg mii)" "$(pkg 8139too)")
run_shim "$W/B1" "$TXN_TOOL" install "$W/B1" "$KVER" --load e1000 "${SET1[@]}" >/dev/null ||
	fail setup "install into B1"
run_shim "$W/B3" "$TXN_TOOL" install "$W/B3" "$KVER" --load 8139too --load e1000 "${SET3[@]}" \
	>/dev/null || fail setup "install into B3"
SA=$(state_of "$W/A")
SB1=$(state_of "$W/B1")
SB3=$(state_of "$W/B3")

# Hardlinks for what the transaction only renames over or unlinks (the module tree and its
# indexes), real copies of what is written in place (the database, the shim's /sys).
fresh() { # template
	rm -rf "$W/R"
	mkdir "$W/R"
	cp -al "$W/$1/." "$W/R/"
	rm -rf "$W/R/var" "$W/R/sys"
	[ -d "$W/$1/var" ] && cp -a "$W/$1/var" "$W/R/var"
	[ -d "$W/$1/sys" ] && cp -a "$W/$1/sys" "$W/R/sys"
	return 0
}

# recover by `kmodctl recover`, or by a writing command (a remove of nothing: exit 3 after
# recovering)
recover() { # how
	if [ "$1" = recover ]; then
		run_shim "$W/R" "$KMODCTL" --root "$W/R" recover
	else
		run_shim "$W/R" "$KMODCTL" --root "$W/R" remove no-such-package -y
		[ $? = 3 ]
	fi
}

# after a crash at step: recovery, verify, no leftovers, the expected state
judge() { # name step before after how
	local name=$1 step=$2 before=$3 after=$4 how=$5 out st want left
	out=$(recover "$how" 2>&1) || { fail "$name" "recovery failed: $out"; return; }
	if ! out=$("$KMODCTL" --root "$W/R" verify 2>&1); then
		fail "$name" "verify: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
		return
	fi
	left=$(find "$W/R/lib/modules/$KVER" -name '.kmodd-*' ! -name .kmodd-depmod.cache \
		! -name '.kmodd-spare.*' ! -name .kmodd-depmod.journal
		depmod_leftovers "$W/R/lib/modules/$KVER")
	[ -e "$W/R/var/lib/kmodd/journal" ] && left="$left journal"
	[ -z "$left" ] || { fail "$name" "left behind: $left"; return; }
	st=$(state_of "$W/R")
	if [[ " $AFTER_COMMIT " == *" ${step#*:} "* ]]; then want=$after; else want=$before; fi
	if [ "$step" = any ]; then
		[ "$st" = "$after" ] && want=$after
		[ "$st" = "$after" ] && n_after=$((n_after + 1)) || n_before=$((n_before + 1))
	fi
	if [ "$st" = "$want" ]; then
		pass "$name"
	elif [ "$st" = "$before" ] || [ "$st" = "$after" ]; then
		fail "$name" "the other consistent state than expected at $step"
	else
		fail "$name" "neither the state before nor after"
	fi
	# the state must work on: a retry of the same transaction succeeds
}

n=0
start=$(date +%s)
for step in "${INSTALL_STEPS[@]}"; do
	for run in 1 2 3; do
		case $run in
		1) tmpl=A set=("${SET1[@]}") load=(--load e1000) after=$SB1 how=recover ;;
		2) tmpl=A set=("${SET3[@]}") load=(--load 8139too) after=$SB3 how=recover ;;
		3) tmpl=A set=("${SET1[@]}") load=(--load e1000) after=$SB1 how=write ;;
		esac
		fresh $tmpl
		KMODD_TXN_CRASH_AT=install:$step run_shim "$W/R" "$TXN_TOOL" install "$W/R" "$KVER" \
			"${load[@]}" "${set[@]}" >/dev/null 2>&1
		rc=$?
		if [ $rc != 137 ]; then
			fail "install-$step-$run" "not killed at the step (rc=$rc)"
			continue
		fi
		judge "install-$step-$run" "install:$step" "$SA" "$after" $how
		n=$((n + 1))
	done
done
for step in "${REMOVE_STEPS[@]}"; do
	for run in 1 2 3; do
		# run 2: removing mii takes 8139too along (it requires mii); e1000 stays
		case $run in
		1) tmpl=B1 what=e1000 before=$SB1 after=$SA how=recover ;;
		2) tmpl=B3 what=mii before=$SB3 after=$SB1 how=recover ;;
		3) tmpl=B1 what=e1000-kmp-amd64 before=$SB1 after=$SA how=write ;;
		esac
		fresh $tmpl
		KMODD_TXN_CRASH_AT=remove:$step run_shim "$W/R" "$KMODCTL" --root "$W/R" remove "$what" -y \
			>/dev/null 2>&1
		rc=$?
		if [ $rc != 137 ]; then
			fail "remove-$step-$run" "not killed at the step (rc=$rc)"
			continue
		fi
		judge "remove-$step-$run" "remove:$step" "$before" "$after" $how
		n=$((n + 1))
	done
done

# an upgrade (the new version's file replaces the old one's: a backup until the commit)
K=$FIXTURES/full-54/lib/modules/$KVER/kernel
V1=$("$TXN_TOOL" mkrpm "$W" "$KVER" good "$K/drivers/net/ethernet/intel/e1000/e1000.ko" 1)
V2=$("$TXN_TOOL" mkrpm "$W" "$KVER" good "$K/drivers/net/mii.ko" 2)
mkdir -p "$W/U1" "$W/U2"
cp -a "$W/A/." "$W/U1/"
run_shim "$W/U1" "$TXN_TOOL" install "$W/U1" "$KVER" "$V1" >/dev/null || fail setup "install v1"
cp -a "$W/U1/." "$W/U2/"
run_shim "$W/U2" "$TXN_TOOL" install "$W/U2" "$KVER" "$V2" >/dev/null || fail setup "upgrade to v2"
SU1=$(state_of "$W/U1")
SU2=$(state_of "$W/U2")
for step in placing rename-first renamed indexing indexed db-uncommitted committed finished; do
	fresh U1
	KMODD_TXN_CRASH_AT=install:$step run_shim "$W/R" "$TXN_TOOL" install "$W/R" "$KVER" "$V2" \
		>/dev/null 2>&1
	rc=$?
	if [ $rc != 137 ]; then
		fail "upgrade-$step" "not killed at the step (rc=$rc)"
		continue
	fi
	judge "upgrade-$step" "install:$step" "$SU1" "$SU2" recover
done

# kill -9 at random moments (depmod's publishing slowed down so that some land inside it)
RANDOM_RUNS=${TXN_RANDOM_RUNS:-12}
n_before=0 n_after=0
for ((i = 1; i <= RANDOM_RUNS; i++)); do
	if ((i % 2)); then
		fresh A
		env LD_PRELOAD="$SHIM" KMODD_SHIM_ROOT="$W/R" KMODD_DEPMOD_STEP_DELAY_US=20000 \
			"$TXN_TOOL" install "$W/R" "$KVER" "${SET3[@]}" >/dev/null 2>&1 &
		before=$SA after=$SB3
	else
		fresh B3
		env LD_PRELOAD="$SHIM" KMODD_SHIM_ROOT="$W/R" KMODD_DEPMOD_STEP_DELAY_US=20000 \
			"$KMODCTL" --root "$W/R" remove mii -y >/dev/null 2>&1 &
		before=$SB3 after=$SB1
	fi
	pid=$!
	sleep "$((RANDOM % 2)).$(printf '%03d' $((RANDOM % 1000)))"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	judge "random-kill-$i" any "$before" "$after" recover
done

echo "# random kills: $n_before recovered to the state before, $n_after to the state after" >&2

# a crash during recovery itself, then recovery again
fresh A
KMODD_TXN_CRASH_AT=install:indexed run_shim "$W/R" "$TXN_TOOL" install "$W/R" "$KVER" "${SET3[@]}" \
	>/dev/null 2>&1
KMODD_TXN_CRASH_AT=recover:back run_shim "$W/R" "$KMODCTL" --root "$W/R" recover >/dev/null 2>&1
rc=$?
[ $rc = 137 ] || fail recover-crash "not killed in recovery (rc=$rc)"
judge recover-crash-then-recover install:indexed "$SA" "$SB3" recover

# after a rolled-back crash the same install goes through
fresh A
KMODD_TXN_CRASH_AT=install:renamed run_shim "$W/R" "$TXN_TOOL" install "$W/R" "$KVER" "${SET1[@]}" \
	>/dev/null 2>&1
out=$(run_shim "$W/R" "$TXN_TOOL" install "$W/R" "$KVER" --load e1000 "${SET1[@]}" 2>&1)
if [ $? = 0 ] && [[ $out == *"recovered: rolled back"* ]] && [ "$(state_of "$W/R")" = "$SB1" ] &&
	indexes_like_depmod "$W/R" >/dev/null; then
	pass retry-after-rollback
else
	fail retry-after-rollback "$out"
fi
h=$("$KMODCTL" --root "$W/R" history 2>&1)
[[ $h == *"recover"*"rolled back install"* ]] && pass history-records-recovery ||
	fail history-records-recovery "$h"
echo "# $n crashes in $(($(date +%s) - start)) s" >&2

finish
