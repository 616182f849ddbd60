#!/usr/bin/env python3
# Prints concrete device modaliases taken from a kernel tree's modules.alias, spread over the
# buses: '*' and '?' made concrete ('0'), '[...]' replaced by a member of the class.
#   pick-modaliases.py MODULES_ALIAS [SCALE]
import sys

QUOTA = {
    "pci": 25, "usb": 20, "of": 8, "hid": 8, "acpi*": 8, "i2c": 5, "virtio": 6,
    "spi": 4, "platform": 4, "hdaudio": 3, "input": 3, "mdio": 3, "serio": 2, "pnp": 2,
    "wmi": 2, "sdio": 2, "vmbus": 2, "dmi*": 2, "pcmcia": 2, "ieee1394": 1, "cpu": 1,
}


def concrete(pattern):
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c in "*?":
            out.append("0")
        elif c == "[":
            j = pattern.find("]", i + 2)
            if j < 0:
                return None
            members = pattern[i + 1:j]
            if members.startswith("!") or members.startswith("^"):
                out.append("Z" if "Z" not in members else "z")
            else:
                out.append(members[0])
            i = j
        elif c == "\\":
            i += 1
            if i < len(pattern):
                out.append(pattern[i])
        else:
            out.append(c)
        i += 1
    s = "".join(out)
    return s if s and " " not in s else None


def main():
    scale = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    by_bus = {}
    with open(sys.argv[1]) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 3 or parts[0] != "alias":
                continue
            bus = parts[1].split(":", 1)[0]
            if bus in QUOTA:
                by_bus.setdefault(bus, []).append(parts[1])
    seen = set()
    for bus, n in QUOTA.items():
        pats = sorted(set(by_bus.get(bus, [])))
        n = max(1, int(n * scale))
        if not pats:
            continue
        step = max(1, len(pats) // n)
        taken = 0
        for k in range(0, len(pats), step):
            m = concrete(pats[k])
            if m and m not in seen:
                seen.add(m)
                print(m)
                taken += 1
            if taken >= n:
                break


main()
