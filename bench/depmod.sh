#!/usr/bin/env bash
# Incremental depmod against kmod's full depmod, in one run on copies of the full 6.1.0-54 tree
# (4,023 modules): `depmod -b ROOT KVER`, and `kmodctl depmod` adding one module (an override of
# e1000 in updates/; and e1000 new in updates/ of a tree without it, as a KMP adds a driver the
# kernel package left out), adding 100 modules (overrides of in-tree modules), removing one; and
# the publish protocol alone for the same bytes (build/bench/publish-floor).
# Medians of hyperfine runs; each preparation (the update that undoes the last one) ends with
# sync, so that its writeback does not run into the run measured. The section "Incremental
# depmod" of bench/RESULTS.md is replaced.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
F=$(bash "$here/scripts/fixtures.sh")
K=$here/build/kmodctl/kmodctl
KVER=6.1.0-54-amd64
RUNS=${RUNS:-30}
results=${RESULTS:-$here/bench/RESULTS.md}
work=$(mktemp -d /tmp/kmodd-bench-depmod.XXXXXX)
trap 'rm -rf "$work"' EXIT
# a private copy of the binary, safe from a rebuild during the run
cp "$K" "$work/kmodctl"
K=$work/kmodctl

copy_tree() { # dest
	mkdir -p "$1"
	cp -al "$F/full-54/." "$1/"
	for f in "$1"/lib/modules/$KVER/modules.*; do
		cp --remove-destination "$F/full-54/${f#"$1"/}" "$f"
	done
}
copy_tree "$work/depmod"
copy_tree "$work/kmodd"
copy_tree "$work/new"
R=$work/kmodd
D=$R/lib/modules/$KVER
SRC=$F/full-54/lib/modules/$KVER
"$K" --root "$R" depmod --full "$KVER" 2>/dev/null # the symbol cache the updates start from

E1000=kernel/drivers/net/ethernet/intel/e1000/e1000.ko
# a tree without e1000 (hard links: the fixture stays as it is)
RN=$work/new
DN=$RN/lib/modules/$KVER
rm -f "$DN/$E1000"
"$K" --root "$RN" depmod --full "$KVER" 2>/dev/null
mkdir -p "$DN/updates/new"
cat >"$work/prep-new1.sh" <<EOF
rm -f $DN/updates/new/e1000.ko
$K --root $RN depmod $KVER --remove e1000 >/dev/null 2>&1 || true
cp $SRC/$E1000 $DN/updates/new/e1000.ko
sync
EOF
mkdir -p "$D/updates/one" "$D/updates/many"
# 100 in-tree modules spread over the tree, as overrides in updates/many/
awk -F: 'NR % 40 == 7 { print $1 }' "$SRC/modules.dep" | head -n 100 >"$work/hundred"
cat >"$work/prep-add1.sh" <<EOF
rm -f $D/updates/one/e1000.ko
$K --root $R depmod $KVER --remove e1000 >/dev/null 2>&1 || true
cp $SRC/$E1000 $D/updates/one/e1000.ko
sync
EOF
cat >"$work/prep-rm1.sh" <<EOF
cp $SRC/$E1000 $D/updates/one/e1000.ko
$K --root $R depmod $KVER --add updates/one/e1000.ko >/dev/null 2>&1
rm -f $D/updates/one/e1000.ko
sync
EOF
{
	echo "if [ -e $work/hundred.added ]; then"
	echo "  rm -f $D/updates/many/*.ko"
	echo -n "  $K --root $R depmod $KVER >/dev/null 2>&1 --remove"
	while read -r p; do b=${p##*/}; b=${b%%.*}; echo -n " ${b//-/_}"; done <"$work/hundred"
	echo
	echo "fi"
	while read -r p; do echo "cp $SRC/$p $D/updates/many/"; done <"$work/hundred"
	echo "touch $work/hundred.added"
	echo "sync"
} >"$work/prep-add100.sh"
add100="$K --root $R depmod $KVER --add"
while read -r p; do add100+=" updates/many/${p##*/}"; done <"$work/hundred"

hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$work/full.json" \
	-n "depmod (kmod 30, full)" "depmod -b $work/depmod $KVER" >&2
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$work/inc.json" \
	-n "kmodctl depmod --add (1 module, overriding an in-tree one)" --prepare "bash $work/prep-add1.sh" \
	"$K --root $R depmod $KVER --add updates/one/e1000.ko" \
	-n "kmodctl depmod --add (1 module, new to the tree)" --prepare "bash $work/prep-new1.sh" \
	"$K --root $RN depmod $KVER --add updates/new/e1000.ko" \
	-n "kmodctl depmod --remove (1 module)" --prepare "bash $work/prep-rm1.sh" \
	"$K --root $R depmod $KVER --remove e1000" \
	-n "kmodctl depmod --add (100 modules)" --prepare "bash $work/prep-add100.sh" \
	"$add100" >&2
"$K" --root "$R" depmod --verify "$KVER" >&2
# the I/O floor: the same publish protocol alone, for the bytes one --add rewrites (every index
# but modules.symbols, which an override of e1000 leaves alone), no reading, no computing
FLOOR=$here/build/bench/publish-floor
mkdir -p "$work/floor"
bash "$work/prep-add1.sh"
"$K" --root "$R" depmod "$KVER" --add updates/one/e1000.ko >/dev/null 2>&1
sizes=$(stat -c %s "$D/modules.dep" "$D/modules.dep.bin" "$D/modules.alias" "$D/modules.alias.bin" \
	"$D/modules.symbols.bin" | tr '\n' ' ')
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$work/floor.json" \
	-n "publish protocol alone ($(echo $sizes | wc -w) files, same sizes)" "$FLOOR $work/floor $sizes" >&2
# where one incremental add spends its time (kmodctl --verbose phase timings, one run)
bash "$work/prep-add1.sh"
"$K" --verbose --root "$R" depmod "$KVER" --add updates/one/e1000.ko 2>&1 |
	sed -n 's/.*) depmod: \(.*\): \([0-9.]*\) ms$/\1 \2/p' >"$work/phases"

section=$(python3 - "$work/full.json" "$work/inc.json" "$RUNS" "$work/phases" "$work/floor.json" <<'EOF'
import json, statistics, sys
full = json.load(open(sys.argv[1]))["results"][0]
inc = json.load(open(sys.argv[2]))["results"] + json.load(open(sys.argv[5]))["results"]
fm = statistics.median(full["times"]) * 1000
print("## Incremental depmod (bench/depmod.sh)\n")
print("`kmodctl depmod` updating the indexes of the full 6.1.0-54 tree (4,023 modules) against")
print("kmod 30's `depmod -b ROOT KVER` rewriting them, in one run; medians of %s runs each" % sys.argv[3])
print("(hyperfine -N, no shell between; process start included; every kmodctl run fsyncs its files")
print("and the directory, depmod does not). Each kmodctl result is byte-identical to depmod's")
print("(tests/integration).\n")
print("| Operation | Median [ms] | Min [ms] | Max [ms] | Full depmod / this |")
print("|:---|---:|---:|---:|---:|")
print("| `%s` | %.1f | %.1f | %.1f | 1.0 |" % (full["command"], fm, min(full["times"]) * 1000, max(full["times"]) * 1000))
for r in inc:
    m = statistics.median(r["times"]) * 1000
    print("| `%s` | %.1f | %.1f | %.1f | %.1fx |" % (r["command"], m, min(r["times"]) * 1000, max(r["times"]) * 1000, fm / m))
phases = [l.rsplit(" ", 1) for l in open(sys.argv[4]).read().splitlines() if l.strip()]
if phases:
    total = sum(float(v) for _, v in phases)
    print("\nOne `--add` of one module (the override), phase by phase (`kmodctl --verbose`, one run,")
    print("%.1f ms in all; the modules.alias thread runs beside the modules.dep, .symbols phase and" % total)
    print("the cache is built beside the publish's syncs):")
    print(", ".join("%s %s ms" % (k, v) for k, v in phases) + ".")
    print("\nAn update with a matching cache reads only the changed modules' ELF and the directories")
    print("whose mtime changed, takes every other module from the mapped cache, copies the unchanged")
    print("modules' lines and patches the three .bin tries (a module added after the others moves no")
    print("priority, and the subtrees it does not touch are copied as bytes); every index that")
    print("changes is still written whole (an override moves the module to the end of depmod's order,")
    print("so every priority after it shifts: about 4.5 MB here) over its spare, the file the")
    print("generation before last published, fdatasynced, committed in the journal and exchanged with")
    print("the file in place: no blocks are freed or allocated (on this machine's ext4, no journal and")
    print("mounted with online discard, every freed block waits for a discard). The last row is that")
    print("protocol alone (bench/publish-floor.c: the same file sizes written over spares, synced,")
    print("committed and exchanged by a program that reads and computes nothing): the I/O floor of an")
    print("update on this disk, process start included.")
one = [r for r in inc if "(1 module" in r["command"] and "--add" in r["command"]]
floor = [r for r in inc if r["command"].startswith("publish protocol")]
if one:
    ratios = [(r["command"], fm / (statistics.median(r["times"]) * 1000)) for r in one]
    print("\nTarget: at least 50x faster than full depmod for one module (%.1f ms here): %s (%s)." %
          (fm / 50, "reached" if min(v for _, v in ratios) >= 50 else "not reached",
           ", ".join("%.1fx %s" % (v, c[c.index("(1 module") + 10:-1].strip()) for c, v in ratios)))
    if floor:
        fl = statistics.median(floor[0]["times"]) * 1000
        print("The publish protocol alone takes %.1f ms (%.0f%% of that budget)." % (fl, 100 * fl / (fm / 50)))
EOF
)
echo "$section"
python3 - "$results" "$section" <<'EOF'
import re, sys
path, section = sys.argv[1], sys.argv[2]
try:
    text = open(path).read()
except FileNotFoundError:
    text = "# Benchmark results\n"
pat = re.compile(r"## Incremental depmod.*?(?=\n## |\Z)", re.S)
if pat.search(text):
    text = pat.sub(section.rstrip() + "\n", text)
else:
    text = text.rstrip() + "\n\n" + section.rstrip() + "\n"
open(path, "w").write(text)
EOF
