#!/usr/bin/env bash
# kmodctl audit against depmod: a root with both fixture kernels (6.1.0-54 and -53) and the
# -53 KMPs of every media driver, NLS table and every 16th other module installed for -53
# through the transaction engine (txn-tool: real packages, database ownership). For every
# installed -53 module, audit's verdict on -54 must equal what `depmod -n -e -E <-54
# Module.symvers>` says about a -54 tree holding it in weak-updates/ (SUSE's method), batched
# and grouped as weak-updates would hold them (kabi-oracle.py: failing candidates and those
# that break a module of the kernel leave the group, round after round).
source "$(dirname "$0")/lib.sh"

TXN_TOOL=${TXN_TOOL:-$BUILD/tests/integration/txn-tool}
[ -x "$TXN_TOOL" ] || { fail setup "$TXN_TOOL not built"; finish; }
[ -d "$FIXTURES/full-53" ] || { fail setup "no full-53 fixture (scripts/fixtures.sh)"; finish; }
REPO53=$("$SRC/kmpbuild/cached-repo.sh" full-53 "$KMPBUILD") || { fail setup "no -53 KMP repository"; finish; }

T=$(mktmp)
R=$T/root
mkdir -p "$R"
# both kernels; hardlinked modules, real copies of the files something may rewrite
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

# the KMPs to install: every media driver and NLS table, and every 16th other module
mapfile -t pkgs < <(cd "$FIXTURES/full-53/lib/modules/$KVER53" &&
	find kernel -name '*.ko' | LC_ALL=C sort |
	awk '/^kernel\/(drivers\/media|fs\/nls)\// || NR % 16 == 0' |
	while read -r p; do
		b=$(basename "$p" .ko)
		ls "$REPO53/x86_64/$b-kmp-amd64-"*.rpm 2>/dev/null | head -n 1
	done)
start=$(date +%s.%N)
if out=$("$TXN_TOOL" install "$R" "$KVER53" "${pkgs[@]}" 2>&1); then
	pass "install-53-kmps"
else
	fail "install-53-kmps" "$(echo "$out" | tail -n 3 | tr '\n' ' ')"
	finish
fi
echo "# installed ${#pkgs[@]} -53 KMPs in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s" >&2
n_installed=$(find "$R/lib/modules/$KVER53/updates" -name '*.ko' | wc -l)
if [ "$n_installed" -ge 300 ]; then pass "at-least-300"; else fail "at-least-300" "$n_installed"; fi

start=$(date +%s.%N)
"$KMODCTL" --root "$R" audit --kernel "$KVER54" --json >"$T/audit.json"
rc=$?
audit_s=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
if [ "$rc" = 6 ]; then pass "audit-exit-not-clean"; else fail "audit-exit-not-clean" "exit $rc, expected 6"; fi

mkdir -p "$T/oracle/lib/modules"
cp -al "$FIXTURES/full-54/lib/modules/$KVER54" "$T/oracle/lib/modules/"
start=$(date +%s.%N)
python3 "$SRC/tests/integration/kabi-oracle.py" "$T/oracle" "$KVER54" \
	"$FIXTURES/full-54/usr/src/linux-headers-$KVER54/Module.symvers" \
	$(find "$R/lib/modules/$KVER53/updates" -name '*.ko' | LC_ALL=C sort) >"$T/oracle.json" ||
	{ fail oracle "kabi-oracle.py failed"; finish; }
oracle_s=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
echo "# audit ${audit_s} s, depmod oracle ${oracle_s} s" >&2

python3 - "$T/audit.json" "$T/oracle.json" "$KVER53" >"$T/cmp.out" 2>"$T/cmp.err" <<'EOF'
import json, sys
audit = json.load(open(sys.argv[1]))
oracle = json.load(open(sys.argv[2]))
k53 = sys.argv[3]
mods = {}
for m in audit["kernels"][0]["modules"]:
    if m["source"] == "candidate" and m["built_for"] == k53:
        probs = {"missing": set(), "crc": set(), "breaks": set()}
        for p in m["problems"]:
            kind = {"missing-symbol": "missing", "crc-mismatch": "crc", "breaks": "breaks"}.get(p["kind"])
            if kind:
                probs[kind].add(p["symbol"])
        mods[m["name"]] = (m, probs)
om = oracle["modules"]
bad = []
if set(mods) != set(om):
    bad.append("module sets differ: audit-only %s, oracle-only %s" %
               (sorted(set(mods) - set(om))[:5], sorted(set(om) - set(mods))[:5]))
owned = sum(1 for m, _ in mods.values() if m["package"])
for n in sorted(set(mods) & set(om)):
    m, probs = mods[n]
    o = om[n]
    if m["verdict"] != o["verdict"]:
        bad.append("%s: audit %s, depmod %s" % (n, m["verdict"], o["verdict"]))
        continue
    for k in ("missing", "crc", "breaks"):
        if probs[k] != set(o[k]):
            bad.append("%s: %s symbols differ: audit %s, depmod %s" %
                       (n, k, sorted(probs[k])[:3], o[k][:3]))
    if m["verdict"] != "ok" and m["round"] != o["round"]:
        bad.append("%s: failed in round %d, depmod's round %d" % (n, m["round"], o["round"]))
from collections import Counter
c = Counter(v["verdict"] for v in om.values())
grouped = sum(1 for v in om.values() if v["breaks"]) + sum(1 for v in om.values() if v["round"] > 1)
print("# %d modules: %s; %d decided by the group (breaks or a later round); %d rounds; "
      "%d owned by a package" % (len(om), dict(c), grouped, oracle["rounds"], owned),
      file=sys.stderr)
for b in bad[:20]:
    print("# " + b, file=sys.stderr)
print("PASS" if not bad and len(om) >= 300 and owned == len(mods) else
      "FAIL %d differences" % len(bad))
print("GROUPED" if grouped > 0 and c["ok"] > 0 and c["crc-mismatch"] > 0 else "NOGROUP")
EOF
cat "$T/cmp.err" >&2
if grep -q '^PASS' "$T/cmp.out"; then pass "verdicts-equal-depmod"; else fail "verdicts-equal-depmod" "$(head -n 1 "$T/cmp.out")"; fi
if grep -q '^GROUPED' "$T/cmp.out"; then pass "mixed-and-grouped"; else fail "mixed-and-grouped" "no module decided by the group, or no mix of verdicts"; fi

finish
