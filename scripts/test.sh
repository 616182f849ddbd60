#!/usr/bin/env bash
# Runs every test tier: installs what is missing, unpacks fixtures, builds (normal and
# ASan+UBSan), runs unit, fuzz-corpus regression and integration (both builds), and the
# VM tier. Ends with
# "N passed, N failed, N skipped" and exits non-zero on any failure.
#
#   scripts/test.sh                 everything
#   TIERS="unit integration" scripts/test.sh     a subset (unit integration san vm)
#   SKIP_DEPS=1 scripts/test.sh     do not run apt-get
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
TIERS=${TIERS:-"unit integration san vm"}
logdir=${KMODD_TEST_LOGS:-$here/build/test-logs}
start=$(date +%s)

[ -n "${SKIP_DEPS:-}" ] || bash scripts/deps.sh || { echo "0 passed, 1 failed"; exit 1; }
FIXTURES=$(bash scripts/fixtures.sh) || { echo "0 passed, 1 failed"; exit 1; }
export FIXTURES

build() { # dir [meson options]
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; return 1; }
	fi
	meson compile -C "$dir" >"$dir.compile.log" 2>&1 || { tail -n 40 "$dir.compile.log"; return 1; }
}

echo "== build (build/)"
build build || { echo "0 passed, 1 failed"; exit 1; }
case " $TIERS " in *" san "*)
	echo "== build (build-san/, address+undefined sanitizers)"
	build build-san -Dsanitize=true || { echo "0 passed, 1 failed"; exit 1; }
esac
mkdir -p "$logdir"
results=$logdir/results.txt
: >"$results"

# run_tier NAME CMD... : stream the output, keep PASS/FAIL/SKIP lines; a command that fails
# without reporting a FAIL line counts as one failure.
run_tier() {
	local name=$1 t0 rc
	shift
	t0=$(date +%s)
	echo "== $name"
	"$@" 2>&1 | tee "$logdir/$name.log" | grep -E '^(PASS|FAIL|SKIP|#)' 
	rc=${PIPESTATUS[0]}
	grep -E '^(PASS|FAIL|SKIP) ' "$logdir/$name.log" | sed "s/^\([A-Z]*\) /\1 [$name] /" >>"$results"
	if [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$logdir/$name.log"; then
		echo "FAIL [$name] exited $rc without a FAIL line (see $logdir/$name.log)" | tee -a "$results"
	fi
	echo "== $name: $(( $(date +%s) - t0 )) s"
}

unit_tier() { # build dir
	local rc=0 t
	for t in "$1"/tests/unit/test-*; do
		[ -x "$t" ] && [ -f "$t" ] || continue
		"$t"
		case $? in 0 | 77) ;; *) rc=1 ;; esac
	done
	return $rc
}

fuzz_tier() { # build dir: every fuzz target over its corpus in tests/fuzz/<target>/
	local rc=0 t
	for t in "$1"/tests/fuzz/fuzz-*; do
		[ -x "$t" ] && [ -f "$t" ] || continue
		"$t" "tests/fuzz/$(basename "$t" | sed 's/^fuzz-//')" || rc=1
	done
	return $rc
}

integration_tier() { # build dir
	local rc=0 t
	for t in tests/integration/test-*.sh; do
		local t0=$(date +%s)
		BUILD=$here/$1 bash "$t" || rc=1
		echo "# $(basename "$t"): $(( $(date +%s) - t0 )) s"
	done
	return $rc
}

for tier in $TIERS; do
	case $tier in
	unit)
		run_tier unit unit_tier build
		run_tier fuzz fuzz_tier build
		;;
	integration) run_tier integration integration_tier build ;;
	san)
		export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:verify_asan_link_order=0}
		export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
		export KMODD_SANITIZE=1
		run_tier unit-san unit_tier build-san
		run_tier fuzz-san fuzz_tier build-san
		run_tier integration-san integration_tier build-san
		unset KMODD_SANITIZE
		;;
	vm)
		if [ -x tests/vm/run.sh ]; then
			run_tier vm env BUILD="$here/build" bash tests/vm/run.sh
		else
			echo "FAIL [vm] tests/vm/run.sh missing" | tee -a "$results"
		fi
		;;
	*) echo "unknown tier '$tier'" >&2; exit 2 ;;
	esac
done

passed=$(grep -c '^PASS ' "$results")
failed=$(grep -c '^FAIL ' "$results")
skipped=$(grep -c '^SKIP ' "$results")
echo "== total time: $(( $(date +%s) - start )) s; logs in $logdir"
if [ "$failed" -gt 0 ]; then
	echo "failures:"
	grep '^FAIL ' "$results" | sed 's/^/  /'
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
