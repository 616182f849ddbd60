#!/usr/bin/env bash
# How long reading a whole kernel module tree takes: kmodctl modules (all 4,023 modules of the
# 6.1.0-54 fixture, every module's modinfo, exports and __versions through libkmod), against
# kmod's own `depmod -n` on the same tree in the same run for scale.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
F=$(bash "$here/scripts/fixtures.sh")
K=$here/build/kmodctl/kmodctl
root=$F/full-54
out=${1:-$here/build/bench-modtree.md}
hyperfine --warmup 2 --runs 10 --export-markdown "$out" \
	-n "kmodctl modules --json" "$K --root $root modules --json >/dev/null" \
	-n "kmodctl modules" "$K --root $root modules >/dev/null" \
	-n "depmod -n (kmod 30)" "depmod -n -b $root 6.1.0-54-amd64 >/dev/null"
cat "$out"
