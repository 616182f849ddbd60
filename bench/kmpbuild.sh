#!/usr/bin/env bash
# How fast kmpbuild writes KMPs, against rpmbuild writing equivalent packages.
#   kmpbuild: the whole 6.1.0-54 fixture (3,982 KMPs + the base package + metadata), all
#             cores and one core, 3 runs each; time per package = wall time / packages.
#   rpmbuild: 20 of those KMPs rebuilt from generated spec files with the same name,
#             version, file, Provides/Requires/Supplements/Recommends, zstd level 3
#             payload, no automatic dependencies, no debuginfo or brp scripts (so rpmbuild
#             does no more work than kmpbuild); one rpmbuild per package, as a packager runs it.
# Prints a markdown section; bench/RESULTS.md keeps the last one.
#   bash bench/kmpbuild.sh [N_RPMBUILD]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
F=$(bash "$here/scripts/fixtures.sh")
K=$here/build/kmpbuild/kmpbuild
kver=6.1.0-54-amd64
root=$F/full-54
n_rb=${1:-20}
T=$(mktemp -d /tmp/kmodd-bench-kmpbuild.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }

# kmpbuild, best of 3, all cores and -j 1
best() { # args...
	local b= t0 t
	for _ in 1 2 3; do
		rm -rf "$T/repo"
		t0=$(now)
		"$K" --root "$root" --kernel "$kver" --out "$T/repo" -q "$@" >/dev/null
		t=$(elapsed "$t0" "$(now)")
		if [ -z "$b" ] || awk -v a="$t" -v b="$b" 'BEGIN{exit !(a<b)}'; then b=$t; fi
	done
	echo "$b"
}
kb_all=$(best)
kb_one=$(best -j 1)
n_pkg=$(ls "$T/repo/x86_64" | wc -l)
per_all=$(awk -v t="$kb_all" -v n="$n_pkg" 'BEGIN{printf "%.2f", t*1000/n}')
per_one=$(awk -v t="$kb_one" -v n="$n_pkg" 'BEGIN{printf "%.2f", t*1000/n}')

# rpmbuild: the first N KMPs in name order with at least one dependency on another KMP
mkdir -p "$T/rb/SPECS" "$T/rb/SOURCES"
ls "$T/repo/x86_64" | grep -- '-kmp-' | head -n "$n_rb" >"$T/sample" || true
while read -r f; do
	pkg=$T/repo/x86_64/$f
	name=$(rpm -qp --qf '%{NAME}' "$pkg")
	file=$(rpm -qpl "$pkg")
	src=$root/lib/modules/$kver/kernel/${file#/lib/modules/$kver/updates/}
	{
		echo "Name: $name"
		echo "Version: $(rpm -qp --qf '%{VERSION}' "$pkg")"
		echo "Release: $(rpm -qp --qf '%{RELEASE}' "$pkg")"
		echo "Summary: $(rpm -qp --qf '%{SUMMARY}' "$pkg")"
		echo "License: GPL-2.0-only"
		echo "AutoReqProv: no"
		rpm -qp --provides "$pkg" | { grep -v "^$name = " || true; } | sed 's/^/Provides: /'
		rpm -qp --requires "$pkg" | { grep -v '^rpmlib(' || true; } | sed 's/^/Requires: /'
		rpm -qp --supplements "$pkg" | sed 's/^/Supplements: /'
		rpm -qp --recommends "$pkg" | sed 's/^/Recommends: /'
		echo "%description"
		echo "$name"
		echo "%install"
		echo "install -D -m 0644 $src %{buildroot}$file"
		echo "%files"
		echo "$file"
	} >"$T/rb/SPECS/$name.spec"
done <"$T/sample"

rb() {
	rpmbuild -bb --quiet --define "_topdir $T/rb" --define 'debug_package %{nil}' \
		--define '__os_install_post %{nil}' --define '_build_id_links none' \
		--define '_binary_payload w3.zstdio' --define "_buildhost kmpbuild" "$@" \
		>/dev/null 2>&1
}
t0=$(now)
for s in "$T"/rb/SPECS/*.spec; do rb "$s" || echo "rpmbuild failed on $s" >&2; done
rb_total=$(elapsed "$t0" "$(now)")
n_rb_done=$(find "$T/rb/RPMS" -name '*.rpm' | wc -l)
per_rb=$(awk -v t="$rb_total" -v n="$n_rb_done" 'BEGIN{printf "%.1f", t*1000/n}')
# the packages are equivalent: same dependencies and file list
same=0
while read -r f; do
	mine=$T/repo/x86_64/$f
	theirs=$(find "$T/rb/RPMS" -name "$f")
	[ -n "$theirs" ] || continue
	a=$(rpm -qp --provides --requires --supplements --recommends -l "$mine" | grep -v '^rpmlib(' | sort)
	b=$(rpm -qp --provides --requires --supplements --recommends -l "$theirs" | grep -v '^rpmlib(' | sort)
	[ "$a" = "$b" ] && same=$((same + 1))
done <"$T/sample"

ratio_all=$(awk -v a="$per_rb" -v b="$per_all" 'BEGIN{printf "%.0f", a/b}')
ratio_one=$(awk -v a="$per_rb" -v b="$per_one" 'BEGIN{printf "%.0f", a/b}')

cat <<EOF
## Building a KMP repository (bench/kmpbuild.sh)

kmpbuild writes the whole 6.1.0-54 fixture ($n_pkg packages: one KMP per non-base module plus
kernel-amd64, and the rpm-md metadata) against rpmbuild 4.18 building $n_rb_done of the same KMPs
from generated spec files (same name, version, file and dependencies; zstd level 3 payload;
AutoReqProv off, no debuginfo, no brp scripts). Best of 3 for kmpbuild; one rpmbuild call per
package, as packaging one KMP per module would run it. Command: \`bash bench/kmpbuild.sh\`.

| | wall time | per package |
|:---|---:|---:|
| kmpbuild, 2 workers, whole tree | ${kb_all} s | ${per_all} ms |
| kmpbuild, 1 worker, whole tree | ${kb_one} s | ${per_one} ms |
| rpmbuild, $n_rb_done packages | ${rb_total} s | ${per_rb} ms |

$same of the $n_rb_done rpmbuild packages have exactly kmpbuild's dependencies and file list
(\`rpm -qp --provides --requires --supplements --recommends -l\`, rpmlib() aside).

Per package kmpbuild is **${ratio_all}x** faster than rpmbuild (${ratio_one}x on one core; target: at
least 20x), and the whole tree takes ${kb_all} s (target: under 60 s).
EOF
