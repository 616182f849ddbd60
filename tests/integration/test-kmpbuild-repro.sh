#!/usr/bin/env bash
# Reproducible output: the same tree built twice (another time, another copy of the tree,
# one worker instead of all) gives byte-identical packages and metadata; SOURCE_DATE_EPOCH
# sets the build time; the whole fixture tree builds in under 60 s.
source "$(dirname "$0")/lib.sh"

T=$(mktmp)
if ! repo=$("$SRC/kmpbuild/cached-repo.sh" full-54 "$KMPBUILD" 2>"$T/err"); then
	fail build "$(tail -n 3 "$T/err" | tr '\n' ' ')"
	finish
fi

# the second build: a copy of the tree (module files hardlinked, mtimes kept), -j 1
mkdir "$T/root"
cp -al "$FIXTURES/full-54/." "$T/root/"
t0=$(date +%s.%N)
if out=$("$KMPBUILD" --root "$T/root" --kernel "$KVER54" --out "$T/again" -j 1 -q 2>&1); then
	secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
	echo "# full-54 with one worker: $secs s"
	pass build-again
else
	fail build-again "$(tail -n 3 <<<"$out" | tr '\n' ' ')"
	finish
fi
sums() { (cd "$1" && find . -type f ! -name .complete ! -name .used -printf '%P\n' | sort | xargs sha256sum); }
sums "$repo" >"$T/a"
sums "$T/again" >"$T/b"
if cmp -s "$T/a" "$T/b"; then
	pass "byte-identical($(wc -l <"$T/a") files)"
else
	fail byte-identical "$(diff "$T/a" "$T/b" | grep -c '^>') files differ, e.g. $(diff "$T/a" "$T/b" | sed -n 2p)"
fi

# SOURCE_DATE_EPOCH: build time and metadata timestamps; twice the same
for i in 1 2; do
	SOURCE_DATE_EPOCH=1700000000 "$KMPBUILD" --root "$FIXTURES/base-54" --kernel "$KVER54" \
		--base /dev/null --out "$T/sde$i" -q >/dev/null 2>&1
done
sums "$T/sde1" >"$T/s1"
sums "$T/sde2" >"$T/s2"
check source-date-epoch-identical cmp "$T/s1" "$T/s2"
pkg=$(ls "$T"/sde1/x86_64/*.rpm | head -n 1)
check source-date-epoch-buildtime test "$(rpm -qp --qf '%{BUILDTIME}' "$pkg")" = 1700000000
check source-date-epoch-revision grep -q '<revision>1700000000</revision>' "$T/sde1/repodata/repomd.xml"

# speed: the whole tree with all workers, into a fresh directory
t0=$(date +%s.%N)
"$KMPBUILD" --root "$FIXTURES/full-54" --kernel "$KVER54" --out "$T/speed" -q >/dev/null 2>&1
secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
echo "# full-54 ($(ls "$T/speed/x86_64" | wc -l) packages) with all workers: $secs s"
if awk -v s="$secs" 'BEGIN{exit !(s < 60)}' && [ -f "$T/speed/repodata/repomd.xml" ]; then
	pass "whole-tree-under-60s(${secs}s)"
else
	fail whole-tree-under-60s "$secs s"
fi

finish
