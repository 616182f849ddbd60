#!/usr/bin/env bash
# The libsolv testcases of tests/resolve/ (the rules the resolver's jobs rely on), checked
# with libsolv's testsolv; and a testcase dumped from a live kmodctl solve replays to the same
# transaction.
source "$(dirname "$0")/lib.sh"

command -v testsolv >/dev/null || { skip setup "testsolv (libsolv-tools) not installed"; finish; }
for t in "$SRC"/tests/resolve/*.t; do
	check "$(basename "$t" .t)" testsolv "$t"
done

# a live solve written as a testcase by KMODD_SOLVER_TESTCASE replays to the same result
work=$(mktmp)
R=$work/root
mkdir -p "$R"
fixture_copy base-54 "$R"
repo=$("$SRC/kmpbuild/cached-repo.sh" full-54 "$KMPBUILD") || { fail setup "no cached repository"; finish; }
"$KMODCTL" --root "$R" repo add kmp "file://$repo" --no-gpgcheck >/dev/null &&
	"$KMODCTL" --root "$R" repo refresh >/dev/null || { fail setup "repo add/refresh failed"; finish; }
KMODD_SOLVER_TESTCASE=$work/tc "$KMODCTL" --root "$R" install --dry-run \
	--modalias usb:v0BDAp8153d0100dc00dsc00dp00icFFiscFFip00in00 >/dev/null 2>&1
if [ -f "$work/tc/testcase.t" ]; then
	check live-testcase-replays testsolv "$work/tc/testcase.t"
	check live-testcase-installs-r8152 grep -q "^install r8152-kmp-amd64" "$work/tc/solver.result"
else
	fail live-testcase-replays "no testcase written to $work/tc"
fi
finish
