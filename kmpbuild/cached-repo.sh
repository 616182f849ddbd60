#!/usr/bin/env bash
# Prints the directory of a KMP repository that kmpbuild built from a fixture kernel tree,
# building it first when the cache has none for this kmpbuild binary. Tests that need a real
# repository (resolution, install, audit) call this instead of running kmpbuild themselves.
#
#   kmpbuild/cached-repo.sh FIXTURE [KMPBUILD]      FIXTURE: full-54 | full-53 | base-54
#
# Cache: ${KMODD_REPO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kmodd/repos}/FIXTURE-KEY/
#   KEY = first 16 hex digits of sha256(kmpbuild binary, base-modules.list, fixture stamp),
#   so a rebuilt kmpbuild or changed fixtures give a new entry; the four most recently used
#   entries per fixture are kept, and none used within the last hour is removed. Never write
#   into a cached repository: copy it (cp -al) first.
# Environment: FIXTURES (default: scripts/fixtures.sh --path), KMPBUILD_ARGS (extra options,
# part of the key).
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fixture=${1:?usage: cached-repo.sh FIXTURE [KMPBUILD]}
kmpbuild=${2:-${KMPBUILD:-$src/build/kmpbuild/kmpbuild}}
fixtures=${FIXTURES:-$("$src/scripts/fixtures.sh" --path)}
root=$fixtures/$fixture
cache=${KMODD_REPO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kmodd/repos}

[ -x "$kmpbuild" ] || { echo "cached-repo: $kmpbuild not built (meson compile -C build)" >&2; exit 1; }
[ -d "$root/lib/modules" ] || { echo "cached-repo: no fixture $root (scripts/fixtures.sh)" >&2; exit 1; }
kver=$(ls "$root/lib/modules" | head -n 1)

key=$( {
	sha256sum "$kmpbuild" "$src/kmpbuild/base-modules.list" | cut -d' ' -f1
	cat "$fixtures/.stamp" 2>/dev/null || stat -c %Y "$root/lib/modules/$kver/modules.dep"
	echo "${KMPBUILD_ARGS:-}"
} | sha256sum | cut -c1-16)
dir=$cache/$fixture-$key

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

if [ ! -f "$dir/.complete" ]; then
	rm -rf "$dir" "$dir.tmp"
	# shellcheck disable=SC2086
	"$kmpbuild" --root "$root" --kernel "$kver" --out "$dir.tmp" -q ${KMPBUILD_ARGS:-} >&2
	touch "$dir.tmp/.complete"
	mv "$dir.tmp" "$dir"
fi
touch "$dir/.used"
# Evict entries of this fixture beyond the four most recently used, but none used within the
# last hour (another test run may still be reading it).
for old in $(ls -1dt "$cache/$fixture"-*/.used 2>/dev/null | tail -n +5); do
	[ -n "$(find "$old" -mmin +60 2>/dev/null)" ] && rm -rf "$(dirname "$old")"
done
echo "$dir"
