#!/usr/bin/env bash
# kmodctl kernel add/remove: weak-updates links for the -53 KMPs on -54.
# A root with both fixture kernels and a few hundred -53 KMPs installed (txn-tool);
# kernel add links exactly the modules audit calls compatible, and after it depmod finds no
# problem at all in the -54 tree (no link the kernel would refuse, no module of the kernel
# broken); the indexes equal kmod's `depmod -b ROOT -C ROOT/etc/depmod.d`; a second add
# changes nothing; a dangling link is reported by audit and cleaned by add; kernel remove
# cleans up (its own links, and the other kernels' links into it); incompatible KMPs are
# replaced by the -54 build from a repository; while another writer holds the lock: exit 5.
source "$(dirname "$0")/lib.sh"

TXN_TOOL=${TXN_TOOL:-$BUILD/tests/integration/txn-tool}
[ -x "$TXN_TOOL" ] || { fail setup "$TXN_TOOL not built"; finish; }
REPO53=$("$SRC/kmpbuild/cached-repo.sh" full-53 "$KMPBUILD") || { fail setup "no -53 KMP repository"; finish; }
REPO54=$("$SRC/kmpbuild/cached-repo.sh" full-54 "$KMPBUILD") || { fail setup "no -54 KMP repository"; finish; }
SYMVERS54=$FIXTURES/full-54/usr/src/linux-headers-$KVER54/Module.symvers
INDEXES=(modules.dep modules.dep.bin modules.alias modules.alias.bin modules.softdep
	modules.symbols modules.symbols.bin modules.devname)

T=$(mktmp)
R=$T/root
mkdir -p "$R"
for fx in full-54 full-53; do
	cp -al "$FIXTURES/$fx/." "$R/"
done
for k in "$KVER54" "$KVER53"; do
	fx=full-${k#6.1.0-}
	fx=${fx%-amd64}
	for f in "$FIXTURES/$fx/lib/modules/$k"/modules.*; do
		cp --remove-destination "$f" "$R/lib/modules/$k/"
	done
done
M54=$R/lib/modules/$KVER54

# media PCI drivers (an interdependent group), NLS tables, and every 40th other module
mapfile -t pkgs < <(cd "$FIXTURES/full-53/lib/modules/$KVER53" &&
	find kernel -name '*.ko' | LC_ALL=C sort |
	awk '/^kernel\/(drivers\/media\/(pci|common|v4l2-core|tuners)|fs\/nls)\// || NR % 40 == 0' |
	while read -r p; do
		ls "$REPO53/x86_64/$(basename "$p" .ko)-kmp-amd64-"*.rpm 2>/dev/null | head -n 1
	done)
"$TXN_TOOL" install "$R" "$KVER53" "${pkgs[@]}" >/dev/null 2>"$T/txn.err" ||
	{ fail setup "txn-tool install: $(tail -n 2 "$T/txn.err")"; finish; }

indexes_equal_depmod() { # kver
	local s=$T/ref bad= f
	rm -rf "$s"
	mkdir -p "$s/lib/modules"
	cp -a "$R/lib/modules/$1" "$s/lib/modules/"
	# weak-updates links point into the other kernels' trees: give them the same targets
	for k in "$KVER54" "$KVER53"; do
		[ "$k" = "$1" ] || { mkdir -p "$s/lib/modules/$k" && cp -al "$R/lib/modules/$k/updates" "$s/lib/modules/$k/" 2>/dev/null; }
	done
	depmod -b "$s" -C "$R/etc/depmod.d" "$1" || return 1
	for f in "${INDEXES[@]}"; do
		cmp -s "$R/lib/modules/$1/$f" "$s/lib/modules/$1/$f" || bad="$bad $f"
	done
	[ -z "$bad" ] || { echo "differ from depmod:$bad"; return 1; }
}

audit_json() { "$KMODCTL" --root "$R" audit --kernel "$KVER54" --json; }

audit_json >"$T/before.json"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["kernels"][0]
ok = sorted(m["name"] for m in d["modules"] if m["source"] == "candidate" and m["verdict"] == "ok" and not m["shadowed_by"])
bad = sorted(m["name"] for m in d["modules"] if m["source"] == "candidate" and m["verdict"] != "ok")
open(sys.argv[2], "w").write("\n".join(ok) + "\n")
open(sys.argv[3], "w").write("\n".join(bad) + "\n")
' "$T/before.json" "$T/ok.list" "$T/bad.list"
echo "# $(wc -l <"$T/ok.list") compatible, $(wc -l <"$T/bad.list") incompatible -53 modules" >&2

check add "$KMODCTL" --root "$R" kernel add "$KVER54" --no-install
find "$M54/weak-updates" -type l -printf '%f\n' | sed 's/\.ko$//; s/-/_/g' | LC_ALL=C sort >"$T/linked.list"
if cmp -s "$T/linked.list" "$T/ok.list" && [ -s "$T/ok.list" ]; then pass links-are-the-compatible-ones
else fail links-are-the-compatible-ones "$(diff "$T/ok.list" "$T/linked.list" | head -n 5 | tr '\n' ' ')"; fi
n_bad_linked=$(grep -c -x -F -f "$T/bad.list" "$T/linked.list")
if [ "$n_bad_linked" = 0 ]; then pass no-incompatible-link; else fail no-incompatible-link "$n_bad_linked linked"; fi
# the kernel's own modversions check, by depmod, on the whole tree after the add
warn=$(depmod -b "$R" -C "$R/etc/depmod.d" -n -e -E "$SYMVERS54" "$KVER54" 2>&1 >/dev/null | grep -c WARNING)
if [ "$warn" = 0 ]; then pass depmod-finds-no-problem; else fail depmod-finds-no-problem "$warn warnings"; fi
check indexes-after-add indexes_equal_depmod "$KVER54"

audit_json >"$T/after.json"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["kernels"][0]
w = [m for m in d["modules"] if m["source"] == "weak-updates"]
assert w and all(m["verdict"] == "ok" and m["package"] for m in w), "a link is not ok or not owned"
assert all(m["built_for"] == sys.argv[2] and m["file"].startswith("lib/modules/" + sys.argv[2] + "/updates/") for m in w)
' "$T/after.json" "$KVER53" && pass audit-links-ok-and-owned || fail audit-links-ok-and-owned "see $T/after.json"

sum_before=$(cd "$M54" && cat "${INDEXES[@]}" | sha256sum)
out=$("$KMODCTL" --root "$R" kernel add "$KVER54" --no-install)
sum_after=$(cd "$M54" && cat "${INDEXES[@]}" | sha256sum)
if echo "$out" | grep -q ' 0 linked,' && [ "$sum_before" = "$sum_after" ]; then pass add-again-no-change
else fail add-again-no-change "$(echo "$out" | tail -n 1)"; fi

# without Module.symvers nothing can be proven: no new link, the proven ones stay
n_links=$(find "$M54/weak-updates" -type l | wc -l)
mv "$R/usr/src/linux-headers-$KVER54" "$T/headers-away"
out=$("$KMODCTL" --root "$R" kernel add "$KVER54" --no-install 2>&1)
rc=$?
mv "$T/headers-away" "$R/usr/src/linux-headers-$KVER54"
if [ "$rc" = 0 ] && [ "$(find "$M54/weak-updates" -type l | wc -l)" = "$n_links" ] &&
	echo "$out" | grep -q 'no Module.symvers' && echo "$out" | grep -q ' 0 linked,'; then
	pass no-symvers-keeps-links
else fail no-symvers-keeps-links "exit $rc: $(echo "$out" | tail -n 1)"; fi

# a dangling link: the -53 module behind one link is gone
victim=$(find "$M54/weak-updates" -type l | LC_ALL=C sort | head -n 1)
rm -f "$(readlink -f "$victim")"
out=$("$KMODCTL" --root "$R" audit --kernel "$KVER54" --json 2>&1)
rc=$?
if [ "$rc" = 6 ] && ! crashed "$rc" "$out" && echo "$out" | grep -q "\"weak-updates/${victim#"$M54"/weak-updates/}\""; then
	pass dangling-link-reported
else fail dangling-link-reported "exit $rc"; fi
out=$("$KMODCTL" --root "$R" audit --kernel "$KVER54" 2>&1)
echo "$out" | grep -q 'dangling weak-updates link' && pass dangling-link-table || fail dangling-link-table "$(echo "$out" | tail -n 1)"
out=$("$KMODCTL" --root "$R" kernel add "$KVER54" --no-install 2>&1)
if [ ! -L "$victim" ] && echo "$out" | grep -q 'removed dangling link'; then pass dangling-link-removed
else fail dangling-link-removed "$(echo "$out" | tail -n 2 | tr '\n' ' ')"; fi
check indexes-after-dangling indexes_equal_depmod "$KVER54"

# removing -53 takes -54's links into it away
check remove-53 "$KMODCTL" --root "$R" kernel remove "$KVER53"
n=$(find "$M54/weak-updates" -type l 2>/dev/null | wc -l)
if [ "$n" = 0 ]; then pass remove-other-cleans-links; else fail remove-other-cleans-links "$n links left"; fi
check indexes-after-remove-other indexes_equal_depmod "$KVER54"

# removing -54 cleans its own weak-updates
check re-add "$KMODCTL" --root "$R" kernel add "$KVER54" --no-install
check remove-54 "$KMODCTL" --root "$R" kernel remove "$KVER54"
if [ ! -e "$M54/weak-updates" ]; then pass remove-cleans-up; else fail remove-cleans-up "$(find "$M54/weak-updates" | head -n 3 | tr '\n' ' ')"; fi
check indexes-after-remove indexes_equal_depmod "$KVER54"

# incompatible KMPs: the same KMP built for -54, from a repository
check repo-add "$KMODCTL" --root "$R" repo add kmp54 "file://$REPO54" --no-gpgcheck
check repo-refresh "$KMODCTL" --root "$R" repo refresh
out=$("$KMODCTL" --root "$R" kernel add "$KVER54" 2>&1)
rc=$?
n_inst=$(echo "$out" | grep -c '^  installed .*(built for')
n_bad=$(grep -c . "$T/bad.list")
if [ "$rc" = 0 ] && [ "$n_inst" -ge "$n_bad" ]; then pass replaced-from-repository
else fail replaced-from-repository "exit $rc, $n_inst installed for $n_bad incompatible: $(echo "$out" | tail -n 2 | tr '\n' ' ')"; fi
audit_json >"$T/final.json"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["kernels"][0]
left = [m["name"] for m in d["modules"] if m["source"] == "candidate" and m["verdict"] != "ok" and not m["shadowed_by"]]
assert not left, "still incompatible and not replaced: %s" % left[:5]
' "$T/final.json" && pass every-kmp-served || fail every-kmp-served "see $T/final.json"
check indexes-after-replace indexes_equal_depmod "$KVER54"

# another writer holds the lock: exit 5, nothing changed
mkdir -p "$R/var/lib/kmodd"
(flock 9 && sleep 3) 9>"$R/var/lib/kmodd/lock" &
sleep 0.5
out=$("$KMODCTL" --root "$R" kernel remove "$KVER54" 2>&1)
rc=$?
wait
if [ "$rc" = 5 ] && echo "$out" | grep -q 'lock'; then pass locked; else fail locked "exit $rc: $out"; fi

finish
