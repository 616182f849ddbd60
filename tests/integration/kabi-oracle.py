#!/usr/bin/env python3
# The depmod oracle of KABI verdicts (SUSE's method, batched and grouped).
#
#   kabi-oracle.py ROOT KVER SYMVERS CANDIDATE...
#
# ROOT holds lib/modules/KVER: the kernel's own tree. Each CANDIDATE (a module file built for
# another kernel) is copied into lib/modules/KVER/weak-updates/ keeping its path below
# updates/ or extra/, with an etc/depmod.d search order that puts weak-updates/ before the
# kernel's own modules. Then `depmod -b ROOT -n -e -E SYMVERS KVER` is run and its warnings
# decide, round after round, as weak-updates would:
#   "<candidate> needs unknown symbol S"            -> the candidate fails (missing S)
#   "<candidate> disagrees about version of symbol S" -> the candidate fails (CRC of S)
#   "<kernel module> ... symbol S"                   -> a candidate broke a module of the
#        kernel: the one that now exports S (depmod's modules.symbols of this round), or,
#        when nobody does, the one that replaced S's exporter (the kernel's modules.symbols)
# Failed candidates are removed and depmod runs again until no candidate is blamed.
# Prints one JSON object: {"name": {"verdict": ..., "missing": [...], "crc": [...],
# "breaks": [...], "round": N}}, verdict "ok", "missing-symbol" or "crc-mismatch".
import json
import os
import re
import shutil
import subprocess
import sys


def main():
    root, kver, symvers = sys.argv[1:4]
    cands = sys.argv[4:]
    moddir = os.path.join(root, "lib/modules", kver)
    os.makedirs(os.path.join(root, "etc/depmod.d"), exist_ok=True)
    with open(os.path.join(root, "etc/depmod.d/00-weak-updates.conf"), "w") as f:
        f.write("search updates extra weak-updates built-in\n")

    # the kernel's own exporters, before any candidate
    base_exporter = {}
    with open(os.path.join(moddir, "modules.symbols")) as f:
        for line in f:
            w = line.split()
            if len(w) == 3 and w[0] == "alias" and w[1].startswith("symbol:"):
                base_exporter.setdefault(w[1][7:], w[2])

    active = {}  # name -> relative path in weak-updates
    for c in cands:
        m = re.search(r"/lib/modules/[^/]+/(?:updates|extra)/(.*)$", c)
        rel = "weak-updates/" + (m.group(1) if m else os.path.basename(c))
        dst = os.path.join(moddir, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        try:
            os.link(c, dst)  # the bench has thousands; depmod only reads them
        except OSError:
            shutil.copyfile(c, dst)
        name = os.path.basename(rel).split(".ko")[0].replace("-", "_")
        active[name] = rel

    result = {}
    rnd = 0
    while True:
        rnd += 1
        p = subprocess.run(["depmod", "-b", root, "-C", os.path.join(root, "etc/depmod.d"),
                            "-n", "-e", "-E", symvers, kver],
                           capture_output=True, text=True)
        exporter = {}
        for line in p.stdout.splitlines():
            w = line.split()
            if len(w) == 3 and w[0] == "alias" and w[1].startswith("symbol:"):
                exporter.setdefault(w[1][7:], w[2])
        blamed = {}
        by_path = {os.path.join(moddir, rel): n for n, rel in active.items()}
        for line in p.stderr.splitlines():
            m = re.match(r"depmod: WARNING: (\S+) (needs unknown symbol|disagrees about "
                         r"version of symbol) (\S+)$", line)
            if not m:
                continue
            path, what, sym = m.groups()
            kind = "missing" if what.startswith("needs") else "crc"
            if path in by_path:
                blamed.setdefault(by_path[path], {"missing": set(), "crc": set(),
                                                  "breaks": set()})[kind].add(sym)
                continue
            # a module of the kernel's own tree: who broke it?
            culprit = exporter.get(sym) if kind == "crc" else None
            if kind == "missing":
                culprit = base_exporter.get(sym)
            if culprit in active:
                b = blamed.setdefault(culprit, {"missing": set(), "crc": set(),
                                                "breaks": set()})
                b["breaks"].add(sym)
                if kind == "missing":
                    b["breaks_missing"] = True
        if not blamed:
            break
        for n, probs in blamed.items():
            bm = probs.pop("breaks_missing", False)
            verdict = "missing-symbol" if probs["missing"] or bm else "crc-mismatch"
            result[n] = {"verdict": verdict, "round": rnd,
                         **{k: sorted(v) for k, v in probs.items()}}
            os.unlink(os.path.join(moddir, active.pop(n)))
    for n in active:
        result[n] = {"verdict": "ok", "round": 0, "missing": [], "crc": [], "breaks": []}
    json.dump({"rounds": rnd, "modules": result}, sys.stdout, indent=1, sort_keys=True)


main()
