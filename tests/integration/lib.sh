# Sourced by tests/integration/test-*.sh.
# Provides: $SRC $BUILD $KMODCTL $KMPBUILD $FIXTURES $KVER54 $KVER53, mktmp, pass, fail, skip, check.
# Output: one line per check, "PASS name" / "FAIL name: why" / "SKIP name: why"; the script exits
# non-zero when any check failed.

set -u
SRC=${SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${BUILD:-$SRC/build}
KMODCTL=${KMODCTL:-$BUILD/kmodctl/kmodctl}
KMPBUILD=${KMPBUILD:-$BUILD/kmpbuild/kmpbuild}
SHIM=${SHIM:-$BUILD/tests/integration/shim/libkmodd-shim.so}
FIXTURES=${FIXTURES:-$("$SRC/scripts/fixtures.sh" --path)}
KVER54=6.1.0-54-amd64
KVER53=6.1.0-53-amd64
TEST_NAME=$(basename "$0" .sh)

_failed=0
# mktmp usually runs in a command substitution (T=$(mktmp)), a subshell: the list of
# directories to remove lives in a file, not in a shell variable.
_tmplist=$(mktemp "${TMPDIR:-/tmp}/kmodd-$TEST_NAME.tmplist.XXXXXX")

mktmp() {
	local d
	d=$(mktemp -d "${TMPDIR:-/tmp}/kmodd-$TEST_NAME.XXXXXX")
	echo "$d" >>"$_tmplist"
	echo "$d"
}

_cleanup() {
	local d
	while read -r d; do
		[ -n "${KEEP_TMP:-}" ] && { echo "# kept $d" >&2; continue; }
		rm -rf "$d"
	done <"$_tmplist"
	rm -f "$_tmplist"
}
trap _cleanup EXIT

# What an unfinished index update leaves in a module directory: a journal that still holds a
# commit, and version 1's temporaries. The spares (.kmodd-spare.*, the generation before the
# one in place, written over by the next update), the cache and an idle journal are kept.
depmod_leftovers() { # moddir
	ls -A "$1" | grep -E '^\.kmodd-tmp\.|^\.kmodd-depmod\.journal\.new$'
	if [ -f "$1/.kmodd-depmod.journal" ] && grep -aqx commit "$1/.kmodd-depmod.journal"; then
		echo ".kmodd-depmod.journal (a commit)"
	fi
	return 0
}

pass() { echo "PASS $TEST_NAME:$1"; }
fail() { echo "FAIL $TEST_NAME:$1: ${2:-}"; _failed=1; }
skip() { echo "SKIP $TEST_NAME:$1: ${2:-}"; }

# check NAME CMD... : PASS when CMD exits 0
check() {
	local name=$1
	shift
	local out
	if out=$("$@" 2>&1); then
		pass "$name"
	else
		fail "$name" "$(printf '%s' "$out" | tail -n 5 | tr '\n' ' ')"
	fi
}

# A copy of a fixture root that tests may change: hardlinked module files (never written in
# place by anything we test), real copies of the index files.
fixture_copy() { # fixture-name dest
	local src="$FIXTURES/$1" dst=$2
	cp -al "$src/." "$dst/"
	local f
	for f in "$dst"/lib/modules/*/modules.*; do
		cp --remove-destination "$src/${f#"$dst"/}" "$f"
	done
}

# Did a program crash rather than fail? (signals, sanitizer reports)
crashed() { # rc output
	[ "$1" -ge 128 ] || printf '%s' "$2" | grep -q -E 'AddressSanitizer|runtime error:|LeakSanitizer'
}

finish() { exit $_failed; }

[ -x "$KMODCTL" ] || { echo "FAIL $TEST_NAME:setup: $KMODCTL not built (meson compile -C build)"; exit 1; }
[ -d "$FIXTURES/full-54" ] || { echo "FAIL $TEST_NAME:setup: fixtures missing (scripts/fixtures.sh)"; exit 1; }
