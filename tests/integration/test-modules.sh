#!/usr/bin/env bash
# kmodctl modules/info against kmod's own tools on the full 6.1.0-54 fixture tree.
source "$(dirname "$0")/lib.sh"

root=$FIXTURES/full-54
tmp=$(mktmp)
symvers=$root/usr/src/linux-headers-$KVER54/Module.symvers

if "$KMODCTL" --root "$root" modules --json >"$tmp/modules.json" 2>"$tmp/err"; then
	pass "modules-json-runs"
else
	fail "modules-json-runs" "$(cat "$tmp/err")"
	finish
fi

n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$tmp/modules.json")
want=$(find "$root/lib/modules/$KVER54" -name '*.ko*' | wc -l)
if [ "$n" = 4023 ] && [ "$n" = "$want" ]; then pass "count-4023"; else fail "count-4023" "listed $n, tree has $want"; fi

# 50 modules at random (seed printed so a failure can be replayed)
seed=${SEED:-$RANDOM}
echo "# seed $seed"
python3 - "$tmp/modules.json" "$root" "$KVER54" "$symvers" "$seed" <<'PY'
import json, random, subprocess, sys

mods_file, root, kver, symvers_path, seed = sys.argv[1:]
mods = json.load(open(mods_file))
rng = random.Random(int(seed))
sample = rng.sample(mods, 50)

symvers = {}
for line in open(symvers_path):
    f = line.rstrip("\n").split("\t")
    symvers[f[1]] = int(f[0], 16)

required_keys = ["name", "path", "aliases", "depends", "softdeps", "firmware", "vermagic",
                 "license", "signer", "supported", "exports", "requires"]
missing = [k for k in required_keys if any(k not in m for m in mods)]
print(("PASS" if not missing else "FAIL") + " test-modules:schema-keys" +
      ("" if not missing else ": missing " + ",".join(missing)))

def modinfo(path, field):
    out = subprocess.run(["modinfo", "-b", root, "-k", kver, "-F", field, path],
                         capture_output=True, text=True, check=True).stdout
    return [l for l in out.split("\n") if l != ""]

bad = {"aliases": [], "depends": [], "firmware": [], "softdeps": [], "vermagic": [],
       "requires-crc": [], "exports-crc": []}
for m in sample:
    full = f"{root}/lib/modules/{kver}/{m['path']}"
    if sorted(modinfo(full, "alias")) != sorted(m["aliases"]):
        bad["aliases"].append(m["name"])
    dep = modinfo(full, "depends")
    dep = [d for d in (dep[0].split(",") if dep else []) if d]
    if sorted(dep) != sorted(m["depends"]):
        bad["depends"].append(m["name"])
    if sorted(modinfo(full, "firmware")) != sorted(m["firmware"]):
        bad["firmware"].append(m["name"])
    if sorted(modinfo(full, "softdep")) != sorted(m["softdeps"]):
        bad["softdeps"].append(m["name"])
    vm = modinfo(full, "vermagic")
    if (vm[0] if vm else None) != m["vermagic"]:
        bad["vermagic"].append(m["name"])
    out = subprocess.run(["modprobe", "--dump-modversions", full], capture_output=True,
                         text=True, check=True).stdout
    want = [(l.split("\t")[1], int(l.split("\t")[0], 16)) for l in out.split("\n") if l]
    got = [(r["symbol"], int(r["crc"], 16)) for r in m["requires"]]
    if want != got:
        bad["requires-crc"].append(m["name"])
    for e in m["exports"]:
        if symvers.get(e["symbol"]) != int(e["crc"], 16):
            bad["exports-crc"].append(m["name"] + ":" + e["symbol"])
            break

n_exports = sum(len(m["exports"]) for m in sample)
n_requires = sum(len(m["requires"]) for m in sample)
print(f"# sample: 50 modules, {n_requires} required symbols, {n_exports} exports")
for k, v in bad.items():
    if v:
        print(f"FAIL test-modules:{k}-vs-kmod: {', '.join(v[:10])}")
    else:
        print(f"PASS test-modules:{k}-vs-kmod")
PY
[ $? -eq 0 ] || fail "compare" "python comparison crashed"

# every module's exports agree with Module.symvers, all 4,023 (cheap: data already in JSON)
python3 - "$tmp/modules.json" "$symvers" <<'PY' && pass "exports-all-vs-symvers" || fail "exports-all-vs-symvers" "mismatch"
import json, sys
symvers = {}
for line in open(sys.argv[2]):
    f = line.rstrip("\n").split("\t")
    symvers[f[1]] = (int(f[0], 16), f[2])
bad = 0
for m in json.load(open(sys.argv[1])):
    for e in m["exports"]:
        crc, mod = symvers.get(e["symbol"], (None, None))
        if crc != int(e["crc"], 16) or not m["path"].startswith("kernel/" + mod):
            bad += 1
sys.exit(1 if bad else 0)
PY

# info: by name and by path, human and JSON
if out=$("$KMODCTL" --root "$root" info e1000 2>&1) &&
	grep -q "^filename: .*e1000.ko$" <<<"$out" && grep -q '^alias: .*pci:v00008086d0000100Esv\*sd\*bc\*sc\*i\*' <<<"$out"; then
	pass "info-human"
else
	fail "info-human" "$(head -3 <<<"$out")"
fi
if "$KMODCTL" --root "$root" info --json "$root/lib/modules/$KVER54/kernel/drivers/net/mii.ko" >"$tmp/mii.json" &&
	python3 -c '
import json,sys
m=json.load(open(sys.argv[1]))
assert m["name"]=="mii" and m["exports"] and all(r["provider"]=="vmlinux" for r in m["requires"]), m
assert any(i["key"]=="signer" for i in m["info"])' "$tmp/mii.json"; then
	pass "info-json-by-path"
else
	fail "info-json-by-path" "unexpected JSON"
fi
out=$("$KMODCTL" --root "$root" info no_such_module 2>&1); rc=$?
if [ $rc = 1 ] && grep -q "no_such_module" <<<"$out"; then pass "info-unknown-module"; else fail "info-unknown-module" "rc=$rc $out"; fi

# --help of each verb is there and exits 0
for v in modules info; do
	check "help-$v" "$KMODCTL" "$v" --help
done
out=$("$KMODCTL" frobnicate 2>&1); rc=$?
[ $rc = 2 ] && pass "unknown-verb-exit-2" || fail "unknown-verb-exit-2" "rc=$rc"

finish
