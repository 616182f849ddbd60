#!/usr/bin/env bash
# Semantics of a kmpbuild repository under libsolv: for every module M of the fixture,
# installing M's KMP on top of the base package kernel-amd64 installs exactly the KMPs of
# M's modules.dep closure (base modules excluded), nothing else, and every non-base module
# has its KMP. kmp-solvecheck loads the metadata with repo_add_rpmmd (any error fails).
source "$(dirname "$0")/lib.sh"

SOLVECHECK=${SOLVECHECK:-$BUILD/kmpbuild/kmp-solvecheck}
T=$(mktmp)

for fx in full-54 full-53; do
	kver=$(ls "$FIXTURES/$fx/lib/modules" | head -n 1)
	if ! repo=$("$SRC/kmpbuild/cached-repo.sh" "$fx" "$KMPBUILD" 2>"$T/err"); then
		fail "$fx-build" "$(tail -n 3 "$T/err" | tr '\n' ' ')"
		continue
	fi
	t0=$(date +%s.%N)
	"$SOLVECHECK" "$repo" "$FIXTURES/$fx/lib/modules/$kver/modules.dep" amd64 >"$T/$fx.out" 2>&1
	rc=$?
	t1=$(date +%s.%N)
	grep -E '^(MISMATCH|PROBLEM|MISSING)' "$T/$fx.out" | head -n 5 | sed 's/^/# /'
	summary=$(tail -n 1 "$T/$fx.out")
	echo "# $fx: $summary ($(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s)"
	if grep -q '^loaded [0-9]* solvables' "$T/$fx.out"; then
		pass "$fx-repo_add_rpmmd"
	else
		fail "$fx-repo_add_rpmmd" "$(head -n 2 "$T/$fx.out" | tr '\n' ' ')"
	fi
	n=$(sed -n 's/^checked \([0-9]*\) KMPs.*/\1/p' "$T/$fx.out")
	if [ "$rc" -eq 0 ] && [ "${n:-0}" -gt 3900 ]; then
		pass "$fx-closure-all($n)"
	else
		fail "$fx-closure-all" "$summary"
	fi
done

# hardware: Supplements modalias(kernel-amd64:...) through a NAMESPACE_MODALIAS callback
# (fnmatch) select the driver of a device and, by its Requires, the driver's dependencies
modalias() { # name alias want...
	local name=$1 alias=$2 got want
	shift 2
	want=$(printf '%s\n' "$@" | sort)
	got=$("$SOLVECHECK" --modalias "$alias" "$repo54" "$FIXTURES/full-54/lib/modules/$KVER54/modules.dep" amd64 2>&1 |
		sed -n 's/^MODALIAS \(.*\)-6\.1\.190-1\.x86_64$/\1/p' | sort)
	if [ "$got" = "$want" ]; then
		pass "$name"
	else
		fail "$name" "got '$(echo $got)', want '$(echo $want)'"
	fi
}
if repo54=$("$SRC/kmpbuild/cached-repo.sh" full-54 "$KMPBUILD" 2>/dev/null); then
	modalias modalias-e1000 pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00 e1000-kmp-amd64
	modalias modalias-ixgbe-with-deps pci:v00008086d000010FBsv00008086sd00000003bc02sc00i00 \
		ixgbe-kmp-amd64 dca-kmp-amd64 libphy-kmp-amd64 mdio-kmp-amd64 mdio_devres-kmp-amd64 \
		xfrm_algo-kmp-amd64
	modalias modalias-unknown-device pci:v0000FFFFd0000FFFFsv0000FFFFsd0000FFFFbcFFscFFiFF
fi

# the checker itself: a modules.dep that lost one dependency must be reported
if [ -n "${repo:-}" ] && repo54=$("$SRC/kmpbuild/cached-repo.sh" full-54 "$KMPBUILD" 2>/dev/null); then
	sed 's|^\(kernel/drivers/net/ethernet/intel/ixgbe/ixgbe.ko:\) [^ ]*|\1|' \
		"$FIXTURES/full-54/lib/modules/$KVER54/modules.dep" >"$T/modules.dep"
	if cmp -s "$T/modules.dep" "$FIXTURES/full-54/lib/modules/$KVER54/modules.dep"; then
		skip checker-detects-mismatch "ixgbe has no dependency to drop"
	elif "$SOLVECHECK" "$repo54" "$T/modules.dep" amd64 >"$T/neg.out" 2>&1; then
		fail checker-detects-mismatch "a dropped dependency went unnoticed"
	elif grep -q '^MISMATCH ixgbe-kmp-amd64' "$T/neg.out"; then
		pass checker-detects-mismatch
	else
		fail checker-detects-mismatch "$(tail -n 2 "$T/neg.out" | tr '\n' ' ')"
	fi
fi

finish
