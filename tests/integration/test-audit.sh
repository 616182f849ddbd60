#!/usr/bin/env bash
# kmodctl audit: the JSON schema of README.md, the Prometheus text format (promtool check
# metrics, or a strict parser when promtool is missing), taint and blacklist read from the
# root, exit status, and bad input: a kernel without Module.symvers (vmlinux symbols
# unverifiable, module exports still checked), a module without __versions, a dangling
# weak-updates link, a corrupt module, a malformed Module.symvers, an unknown kernel.
source "$(dirname "$0")/lib.sh"

T=$(mktmp)
R=$T/root
mkdir -p "$R"
fixture_copy base-54 "$R"
M53=$FIXTURES/full-53/lib/modules/$KVER53/kernel
U53=$R/lib/modules/$KVER53/updates
mkdir -p "$U53"
# -53 modules "installed" for -53, without a package: compatible and not, one that needs a
# symbol of a -54 module (scsi_mod) with another CRC, one that needs only libata's (same CRCs)
for p in lib/crc7.ko crypto/cast_common.ko fs/nls/nls_cp850.ko crypto/fcrypt.ko \
	net/ipv4/tcp_highspeed.ko drivers/scsi/scsi_transport_fc.ko drivers/ata/pata_ali.ko; do
	mkdir -p "$U53/$(dirname "$p")"
	cp "$M53/$p" "$U53/$p"
done
# a module without __versions (built without modversions, as far as anyone can tell)
objcopy --remove-section=__versions "$M53/lib/crc8.ko" "$U53/lib/crc8.ko"

out=$("$KMODCTL" --root "$R" audit --kernel "$KVER54" --json 2>&1 >"$T/a.json")
rc=$?
if [ "$rc" = 6 ] && ! crashed "$rc" "$out"; then pass exit-not-clean; else fail exit-not-clean "exit $rc: $out"; fi

verdict_of() { # json name
	python3 -c '
import json, sys
for m in json.load(open(sys.argv[1]))["kernels"][0]["modules"]:
    if m["name"] == sys.argv[2] and m["source"] == "candidate":
        print(m["verdict"], " ".join(sorted({p["kind"] for p in m["problems"]})))' "$1" "$2"
}

# the schema: every module entry has the documented fields with the documented types
python3 - "$T/a.json" <<'EOF' && pass json-schema || fail json-schema "see $T/a.json"
import json, sys
d = json.load(open(sys.argv[1]))
assert isinstance(d["clean"], bool) and d["clean"] is False
k = d["kernels"][0]
for f, t in (("kernel", str), ("running", bool), ("modules", list), ("dangling_links", list),
             ("warnings", list), ("summary", dict), ("clean", bool), ("database", bool)):
    assert isinstance(k[f], t), f
verdicts = {"ok", "missing-symbol", "crc-mismatch", "vermagic-mismatch", "unknown"}
kinds = {"missing-symbol", "crc-mismatch", "unverifiable", "no-versions", "vermagic", "breaks"}
for m in k["modules"]:
    for f, t in (("name", str), ("path", str), ("file", str), ("source", str),
                 ("built_for", str), ("verdict", str), ("problems", list), ("intree", bool),
                 ("loaded", bool), ("blacklisted", bool), ("vermagic_differs", bool),
                 ("round", int)):
        assert isinstance(m[f], t), (m["name"], f)
    assert m["package"] is None or isinstance(m["package"], str)
    assert m["verdict"] in verdicts and m["source"] in {"tree", "weak-updates", "candidate"}
    assert not m["path"].startswith("/")
    assert m["signature"] is None or {"signer", "key", "hash", "kernel_key"} <= set(m["signature"])
    assert (m["verdict"] == "ok") == (not m["problems"] or m["shadowed_by"] is not None), m["name"]
    for p in m["problems"]:
        assert p["kind"] in kinds and isinstance(p["message"], str), p
s = k["summary"]
assert s["modules"] == len(k["modules"])
assert sum(s[v] for v in verdicts) + s["shadowed"] == s["modules"]
EOF

check verdict-ok-crc7 [ "$(verdict_of "$T/a.json" crc7)" = "ok " ]
check verdict-crc-fcrypt [ "$(verdict_of "$T/a.json" fcrypt)" = "crc-mismatch crc-mismatch" ]
check verdict-module-export-crc [ "$(verdict_of "$T/a.json" scsi_transport_fc)" = "crc-mismatch crc-mismatch" ]
check no-versions-unknown [ "$(verdict_of "$T/a.json" crc8)" = "unknown no-versions" ]
out=$("$KMODCTL" --root "$R" audit --kernel "$KVER54" 2>&1)
echo "$out" | grep -q 'no __versions section' && pass no-versions-explained || fail no-versions-explained "$(echo "$out" | grep -A2 crc8)"
echo "$out" | grep -q 'CRC mismatch on .*: kernel has 0x[0-9a-f]\{8\} (.*), module wants 0x[0-9a-f]\{8\}' &&
	pass table-crc-line || fail table-crc-line "$(echo "$out" | head -n 5)"
echo "$out" | grep -q 'not owned by any package' && pass table-unowned || fail table-unowned ""

# taint, loaded, blacklist: from the root's /proc, /sys and modprobe.d
mkdir -p "$R/proc/sys/kernel" "$R/sys/module/crc16" "$R/etc/modprobe.d"
echo "$KVER54" >"$R/proc/sys/kernel/osrelease"
echo 12288 >"$R/proc/sys/kernel/tainted"
echo OE >"$R/sys/module/crc16/taint"
echo "blacklist crc7" >"$R/etc/modprobe.d/audit-test.conf"
"$KMODCTL" --root "$R" audit --kernel "$KVER54" --json >"$T/t.json" 2>&1
python3 - "$T/t.json" <<'EOF' && pass taint-and-blacklist || fail taint-and-blacklist "see $T/t.json"
import json, sys
k = json.load(open(sys.argv[1]))["kernels"][0]
assert k["running"] and k["tainted"] == 12288
m = {(x["name"], x["source"]): x for x in k["modules"]}
assert m[("crc16", "tree")]["loaded"] and m[("crc16", "tree")]["taint"] == "OE"
assert m[("crc7", "candidate")]["blacklisted"]
assert not m[("cast_common", "candidate")]["blacklisted"]
EOF

# Prometheus text format
"$KMODCTL" --root "$R" audit --kernel "$KVER54" --prometheus "$T/kmodd.prom"
rc=$?
if [ "$rc" = 6 ] && [ -s "$T/kmodd.prom" ]; then pass prometheus-written; else fail prometheus-written "exit $rc"; fi
if command -v promtool >/dev/null; then
	if out=$(promtool check metrics <"$T/kmodd.prom" 2>&1); then pass promtool
	else fail promtool "$(echo "$out" | head -n 3 | tr '\n' ' ')"; fi
else
	skip promtool "promtool not installed (scripts/deps.sh installs Debian's prometheus)"
fi
# a strict parse of the exposition format, whatever promtool says
python3 - "$T/kmodd.prom" <<'EOF' && pass prometheus-strict || fail prometheus-strict "see $T/kmodd.prom"
import re, sys
name = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
label = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
sample = re.compile(r"^(%s)(\{%s(?:,%s)*\})? (-?[0-9.]+(?:e[+-]?[0-9]+)?|NaN|[+-]Inf)$" % (name, label, label))
typed, seen = {}, set()
for line in open(sys.argv[1]).read().split("\n")[:-1]:
    if line.startswith("# HELP "):
        continue
    if line.startswith("# TYPE "):
        _, _, n, t = line.split(" ")
        assert t in ("gauge", "counter", "untyped") and n not in typed, line
        typed[n] = t
        continue
    m = sample.match(line)
    assert m, "bad line: %r" % line
    assert m.group(1) in typed, "sample before its TYPE: %r" % line
    assert (m.group(1), m.group(2)) not in seen, "duplicate series: %r" % line
    seen.add((m.group(1), m.group(2)))
assert any(l.startswith('kmodd_audit_module_failed{') for l in open(sys.argv[1]))
assert "kmodd_audit_clean 0" in open(sys.argv[1]).read()
EOF

# a kernel without Module.symvers: vmlinux symbols unverifiable, module exports still checked
mv "$R/usr/src/linux-headers-$KVER54" "$T/headers-away"
out=$("$KMODCTL" --root "$R" audit --kernel "$KVER54" --json 2>&1 >"$T/n.json")
rc=$?
if [ "$rc" = 6 ] && ! crashed "$rc" "$out"; then pass no-symvers-runs; else fail no-symvers-runs "exit $rc: $out"; fi
check no-symvers-unverifiable [ "$(verdict_of "$T/n.json" crc7)" = "unknown unverifiable" ]
check no-symvers-module-crc-still-checked [ "$(verdict_of "$T/n.json" scsi_transport_fc)" = "crc-mismatch crc-mismatch unverifiable" ]
check no-symvers-module-export-ok [ "$(verdict_of "$T/n.json" pata_ali)" = "unknown unverifiable" ]
python3 -c 'import json,sys; k=json.load(open(sys.argv[1]))["kernels"][0]; assert k["symvers"] is None' "$T/n.json" &&
	pass no-symvers-null || fail no-symvers-null ""
out=$("$KMODCTL" --root "$R" audit --kernel "$KVER54" 2>&1)
echo "$out" | grep -q 'Module.symvers: none' && pass no-symvers-said || fail no-symvers-said "$(echo "$out" | head -n 3)"
mv "$T/headers-away" "$R/usr/src/linux-headers-$KVER54"

# a dangling weak-updates link
mkdir -p "$R/lib/modules/$KVER54/weak-updates/gone"
ln -s "../../../$KVER53/updates/gone/gone.ko" "$R/lib/modules/$KVER54/weak-updates/gone/gone.ko"
out=$("$KMODCTL" --root "$R" audit --kernel "$KVER54" 2>&1)
rc=$?
if [ "$rc" = 6 ] && ! crashed "$rc" "$out" && echo "$out" | grep -q 'weak-updates/gone/gone.ko: dangling weak-updates link'; then
	pass dangling-link
else fail dangling-link "exit $rc: $(echo "$out" | tail -n 2 | tr '\n' ' ')"; fi
rm -rf "$R/lib/modules/$KVER54/weak-updates"

# a corrupt module among the -53 ones: skipped with a warning
head -c 1000 "$M53/lib/crc7.ko" >"$U53/lib/broken.ko"
out=$("$KMODCTL" --root "$R" audit --kernel "$KVER54" 2>&1)
rc=$?
if [ "$rc" = 6 ] && ! crashed "$rc" "$out" && echo "$out" | grep -q "warning: lib/modules/$KVER53/updates/lib/broken.ko: not a readable module"; then
	pass corrupt-module-skipped
else fail corrupt-module-skipped "exit $rc: $(echo "$out" | tail -n 2 | tr '\n' ' ')"; fi
rm -f "$U53/lib/broken.ko"

# a malformed Module.symvers, an unknown kernel: exit 1 with the file named
printf '0xzz\tbad\n' >"$T/bad.symvers"
out=$("$KMODCTL" --root "$R" audit --kernel "$KVER54" --symvers "$T/bad.symvers" 2>&1)
rc=$?
if [ "$rc" = 1 ] && echo "$out" | grep -q "bad.symvers"; then pass bad-symvers; else fail bad-symvers "exit $rc: $out"; fi
out=$("$KMODCTL" --root "$R" audit --kernel 9.9.9-1-amd64 2>&1)
rc=$?
if [ "$rc" = 1 ] && ! crashed "$rc" "$out"; then pass unknown-kernel; else fail unknown-kernel "exit $rc: $out"; fi
out=$("$KMODCTL" --root "$R" audit --kernel "$KVER54" --all-kernels 2>&1)
[ $? = 2 ] && pass usage-exclusive || fail usage-exclusive "$out"

# clean: without the -53 modules, the base tree alone
rm -rf "$R/lib/modules/$KVER53"
out=$("$KMODCTL" --root "$R" audit --all-kernels 2>&1)
rc=$?
if [ "$rc" = 0 ] && echo "$out" | grep -q ': clean$'; then pass exit-clean; else fail exit-clean "exit $rc: $(echo "$out" | tail -n 1)"; fi

finish
