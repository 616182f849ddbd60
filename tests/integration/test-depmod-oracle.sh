#!/bin/bash
# Incremental depmod against kmod's depmod: random change sets on a copy of the full-54 tree;
# after every step each index file must equal what `depmod -b` writes for the same tree, and
# modprobe must resolve the changed modules' aliases the same way on both.
# DEPMOD_ORACLE_STEPS (default 50) and DEPMOD_ORACLE_SEED reproduce a run.
source "$(dirname "$0")/lib.sh"
# a private copy of the binary: a rebuild while the test runs does not disturb it
_bin=$(mktmp)
cp "$KMODCTL" "$_bin/kmodctl"
KMODCTL=$_bin/kmodctl

STEPS=${DEPMOD_ORACLE_STEPS:-50}
SEED=${DEPMOD_ORACLE_SEED:-$(( $(date +%s) % 100000 ))}
RANDOM=$SEED
echo "# seed $SEED, $STEPS steps"

KVER=$KVER54
FIX=$FIXTURES/full-54
T=$(mktmp)
S=$(mktmp)
fixture_copy full-54 "$T"
D=$T/lib/modules/$KVER
INDEXES=(modules.dep modules.dep.bin modules.alias modules.alias.bin modules.softdep
	modules.symbols modules.symbols.bin modules.devname modules.builtin.bin
	modules.builtin.alias.bin)

mapfile -t ALL < <(cut -d: -f1 "$FIX/lib/modules/$KVER/modules.dep")
# modules others depend on, and modules with at least two dependencies
mapfile -t NEEDED < <(cut -d: -f2 "$FIX/lib/modules/$KVER/modules.dep" | tr ' ' '\n' | sed '/^$/d' |
	sort | uniq -c | sort -rn | awk '$1 >= 2 { print $2 }' | head -300)
mapfile -t CHAINS < <(awk -F: 'split($2, a, " ") >= 2 { print $1 }' "$FIX/lib/modules/$KVER/modules.dep")
# modules that export nothing: added under a new name, they come after every other module and
# change no symbol's owner (modules.symbols and its .bin stay as they are)
mapfile -t LEAVES < <(awk 'NR == FNR { if ($1 == "alias") own[$3] = 1; next }
	{ p = $1; sub(/:$/, "", p); b = p; sub(/.*\//, "", b); sub(/\..*/, "", b); gsub(/-/, "_", b)
	  if (!(b in own)) print p }' "$FIX/lib/modules/$KVER/modules.symbols" \
	<(cut -d: -f1 "$FIX/lib/modules/$KVER/modules.dep"))

name_of() { local b=${1##*/}; b=${b%%.*}; echo "${b//-/_}"; }
pick() { local -n arr=$1; echo "${arr[RANDOM % ${#arr[@]}]}"; }

declare -A ADDED=()    # name -> updates/ path we added
declare -A REMOVED=()  # name -> kernel/ path we deleted
ARGS=()
CHANGED=()

op_override() { # rel path of an in-tree module
	local rel=$1 n
	n=$(name_of "$rel")
	[ -n "${ADDED[$n]:-}" ] || [ -n "${REMOVED[$n]:-}" ] && return 1
	local up=updates/${rel#kernel/}
	mkdir -p "$D/$(dirname "$up")"
	cp "$FIX/lib/modules/$KVER/$rel" "$D/$up"
	ADDED[$n]=$up
	ARGS+=(--add "$up")
	CHANGED+=("$n")
}

op_chain() {
	local top line p
	top=$(pick CHAINS)
	line=$(grep "^$top:" "$FIX/lib/modules/$KVER/modules.dep")
	for p in $top ${line#*:}; do
		op_override "$p" || true
	done
}

op_add_copy() { # list prefix dir: a module of list added as updates/dir/<prefix><name>.ko
	local rel n up
	rel=$(pick "$1")
	n=$2$(name_of "$rel")
	[ -n "${ADDED[$n]:-}" ] && return 1
	up=updates/$3/$n.ko
	mkdir -p "$D/updates/$3"
	cp "$FIX/lib/modules/$KVER/$rel" "$D/$up"
	ADDED[$n]=$up
	ARGS+=(--add "$up")
	CHANGED+=("$n")
}

# a library under a second name: two exporters of the same symbols
op_dup_exporter() { op_add_copy NEEDED kmodd_dup_ dup; }

# a module that exports nothing, new to the tree (as a KMP adds a driver)
op_new_leaf() { op_add_copy LEAVES kmodd_new_ new; }

op_remove_added() {
	local n
	[ ${#ADDED[@]} -gt 0 ] || return 1
	local names=("${!ADDED[@]}")
	n=${names[RANDOM % ${#names[@]}]}
	[[ " ${CHANGED[*]} " == *" $n "* ]] && return 1
	rm -f "$D/${ADDED[$n]}"
	unset "ADDED[$n]"
	ARGS+=(--remove "$n")
	CHANGED+=("$n")
}

op_remove_needed() { # an in-tree module others need
	local rel n
	rel=$(pick NEEDED)
	n=$(name_of "$rel")
	[ -n "${ADDED[$n]:-}" ] || [ -n "${REMOVED[$n]:-}" ] && return 1
	rm -f "$D/$rel"
	REMOVED[$n]=$rel
	ARGS+=(--remove "$n")
	CHANGED+=("$n")
}

op_restore() {
	local n
	[ ${#REMOVED[@]} -gt 0 ] || return 1
	local names=("${!REMOVED[@]}")
	n=${names[RANDOM % ${#names[@]}]}
	ln "$FIX/lib/modules/$KVER/${REMOVED[$n]}" "$D/${REMOVED[$n]}"
	ARGS+=(--add "${REMOVED[$n]}")
	unset "REMOVED[$n]"
	CHANGED+=("$n")
}

compare_with_depmod() { # step
	local f diffs=()
	rm -rf "$S"
	mkdir -p "$S"
	cp -al "$T/." "$S/"
	depmod -b "$S" "$KVER" 2>/dev/null || { fail "step$1-depmod" "depmod failed"; return 1; }
	for f in "${INDEXES[@]}"; do
		cmp -s "$D/$f" "$S/lib/modules/$KVER/$f" || diffs+=("$f")
	done
	if [ ${#diffs[@]} -gt 0 ]; then
		fail "step$1-identical" "differs from depmod: ${diffs[*]} (ops: ${ARGS[*]}; seed $SEED)"
		return 1
	fi
	# libkmod resolves the changed modules' first alias the same way on both trees
	local n a out1 out2
	for n in "${CHANGED[@]}"; do
		a=$(awk -v n="$n" '$1 == "alias" && $3 == n { print $2; exit }' "$D/modules.alias")
		[ -n "$a" ] || a=$n
		out1=$(modprobe -d "$T" -S "$KVER" --show-depends "$a" 2>&1 | sed "s|$T||g")
		out2=$(modprobe -d "$S" -S "$KVER" --show-depends "$a" 2>&1 | sed "s|$S||g")
		if [ "$out1" != "$out2" ]; then
			fail "step$1-modprobe" "modprobe --show-depends '$a' differs"
			return 1
		fi
	done
	return 0
}

ok=0
slow=()
start=$(date +%s)
for ((step = 1; step <= STEPS; step++)); do
	ARGS=()
	CHANGED=()
	while [ ${#ARGS[@]} -eq 0 ]; do
		case $((RANDOM % 11)) in
		0 | 1) op_override "$(pick ALL)" || true ;;
		2) op_chain ;;
		3) op_override "$(pick NEEDED)" || true ;;
		4 | 5) op_remove_added || true ;;
		6) op_remove_needed || true ;;
		7) op_restore || true ;;
		8) op_dup_exporter || true ;;
		9) op_override "$(pick ALL)" || true; op_remove_added || true ;;
		10) op_new_leaf || true ;;
		esac
	done
	if ! out=$("$KMODCTL" --verbose --root "$T" depmod "$KVER" "${ARGS[@]}" 2>&1); then
		fail "step$step-kmodctl" "$(echo "$out" | tail -n 3 | tr '\n' ' ') (ops: ${ARGS[*]}; seed $SEED)"
		break
	fi
	if [ $step -gt 1 ] && echo "$out" | grep -q "Rebuilt all"; then
		fail "step$step-incremental" "fell back to a full build: $out"
		break
	fi
	# every step after the first takes the cache-only update (the first one builds the cache)
	if [ $step -gt 1 ] && echo "$out" | grep -q "the fast update does not apply"; then
		slow+=("$step")
	fi
	compare_with_depmod $step || break
	ok=$((ok + 1))
done
[ ${#slow[@]} -eq 0 ] && pass "fast-update-taken($((STEPS - 1)) steps)" ||
	fail "fast-update-taken" "steps ${slow[*]} took the general update (seed $SEED)"
[ $ok -eq "$STEPS" ] && pass "random-change-sets($STEPS steps, seed $SEED, $(( $(date +%s) - start )) s)"
[ -z "$(depmod_leftovers "$D")" ] && pass "no-temporaries" ||
	fail "no-temporaries" "$(depmod_leftovers "$D")"
finish
