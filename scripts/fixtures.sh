#!/usr/bin/env bash
# Verify and unpack the fixture kernels once into a cache outside the source tree.
#
#   scripts/fixtures.sh            unpack (if not yet) and print the cache directory
#   scripts/fixtures.sh --path     print the cache directory only
#
# Layout of the cache ($KMODD_FIXTURES, default ~/.cache/kmodd/fixtures):
#   full-54/   root with lib/modules/6.1.0-54-amd64 (depmod run), boot/, usr/src/linux-headers-*/
#   full-53/   the same for 6.1.0-53-amd64
#   base-54/   minimal base root of 6.1.0-54 (tests/fixtures/base-modules.list + modules.dep closure)
#   debs/      nothing; the .debs stay in ../shared/fixtures/kernels
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
src=${KMODD_FIXTURE_SRC:-$here/../shared/fixtures/kernels}
cache=${KMODD_FIXTURES:-${XDG_CACHE_HOME:-$HOME/.cache}/kmodd/fixtures}
FORMAT=3   # bump when the layout below changes

if [ "${1:-}" = "--path" ]; then
	echo "$cache"
	exit 0
fi

if [ ! -f "$src/SHA256SUMS" ]; then
	echo "fixtures: $src/SHA256SUMS not found; put ../shared beside the checkout or set KMODD_FIXTURE_SRC" >&2
	exit 1
fi

stamp="$cache/.stamp"
want="$FORMAT $(sha256sum "$src/SHA256SUMS" | cut -d' ' -f1) $(sha256sum "$here/tests/fixtures/base-modules.list" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
	echo "$cache"
	exit 0
fi

command -v depmod >/dev/null || { echo "fixtures: depmod not found (apt-get install kmod)" >&2; exit 1; }

echo "fixtures: verifying $src/SHA256SUMS" >&2
(cd "$src" && sha256sum --quiet -c SHA256SUMS) || {
	echo "fixtures: checksum mismatch in $src; the fixture .debs are damaged" >&2
	exit 1
}

mkdir -p "$cache"
rm -f "$stamp"

unpack() { # abi
	local abi=$1 kver="6.1.0-$1-amd64" dst="$cache/full-$1" tmp
	tmp=$(mktemp -d "$cache/.tmp-full-$abi.XXXXXX")
	echo "fixtures: unpacking $kver" >&2
	dpkg-deb -x "$src"/linux-image-"$kver"_*.deb "$tmp"
	dpkg-deb -x "$src"/linux-headers-"$kver"_*.deb "$tmp"
	# The headers package points build/ at its -common sibling, which is not a fixture;
	# keep Module.symvers where kmodd looks for it.
	rm -f "$tmp/lib/modules/$kver/build"
	ln -s "/usr/src/linux-headers-$kver" "$tmp/lib/modules/$kver/build"
	depmod -b "$tmp" "$kver"
	rm -rf "$dst"
	mv "$tmp" "$dst"
}

unpack 54 &
p1=$!
unpack 53 &
p2=$!
wait $p1
wait $p2

# Minimal base root of 6.1.0-54.
kver=6.1.0-54-amd64
full="$cache/full-54"
tmp=$(mktemp -d "$cache/.tmp-base.XXXXXX")
mkdir -p "$tmp/lib/modules/$kver"
cp -a "$full/boot" "$tmp/"
mkdir -p "$tmp/usr/src"
cp -a "$full/usr/src/linux-headers-$kver" "$tmp/usr/src/"
cp -a "$full/lib/modules/$kver/build" "$tmp/lib/modules/$kver/"
for f in modules.builtin modules.builtin.modinfo modules.order; do
	cp -a "$full/lib/modules/$kver/$f" "$tmp/lib/modules/$kver/"
done
names=$(grep -v '^\s*#' "$here/tests/fixtures/base-modules.list" | awk 'NF{print $1}')
# modules.dep closure: modprobe --show-depends prints insmod lines for the whole chain
paths=$(for n in $names; do
	modprobe -d "$full" -S "$kver" --show-depends "$n" 2>/dev/null | awk '$1=="insmod"{print $2}'
done | sort -u)
[ -n "$paths" ] || { echo "fixtures: base module list resolved to nothing" >&2; exit 1; }
for p in $paths; do
	rel=${p#"$full"/}
	rel=${rel#/}
	mkdir -p "$tmp/$(dirname "$rel")"
	cp -a "$full/$rel" "$tmp/$rel"
done
depmod -b "$tmp" "$kver"
rm -rf "$cache/base-54"
mv "$tmp" "$cache/base-54"
echo "fixtures: base-54 has $(grep -c . "$cache/base-54/lib/modules/$kver/modules.dep") modules" >&2

echo "$want" >"$stamp"
echo "$cache"
