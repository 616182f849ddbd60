#!/usr/bin/env python3
# Writes the corpus of tests/fuzz/modelf/: small synthetic files shaped like kernel modules
# (ELF64/ELF32, either byte order) and damaged ones. Usage: gen-modelf-corpus.py DIR
import os
import struct
import sys

out = sys.argv[1]

def elf(cls64=True, little=True, modinfo=b"alias=pci:v00008086d0000100Esv*sd*bc*sc*i*\0softdep=pre: crc32c\0license=GPL\0name=fuzzmod\0",
        versions=(("module_layout", 0x1234), ("printk", 0xdeadbeef)), exports=("fuzz_export",),
        needs=("printk", "kmalloc_weak"), ksymtab_strings=b"fuzz_export\0"):
    e = "<" if little else ">"
    # string table
    strtab = b"\0"
    names = {}
    def add(n):
        nonlocal strtab
        names[n] = len(strtab); strtab += n.encode() + b"\0"
    for x in exports: add("__crc_" + x)
    for x in needs: add(x)
    syms = []
    symsize = 24 if cls64 else 16
    def sym(name_off, info, shndx, value=0):
        if cls64:
            return struct.pack(e + "IBBHQQ", name_off, info, 0, shndx, value, 0)
        return struct.pack(e + "IIIBBH", name_off, value, 0, info, 0, shndx)
    symtab = sym(0, 0, 0)
    for x in exports: symtab += sym(names["__crc_" + x], (1 << 4) | 0, 0xfff1, 0xabcdef)
    for x in needs:
        bind = 2 if x.endswith("_weak") else 1
        symtab += sym(names[x], (bind << 4), 0)
    ver = b""
    for n, crc in versions:
        nb = n.encode()[:55]
        if cls64:
            ver += struct.pack(e + "Q", crc) + nb + b"\0" * (56 - len(nb))
        else:
            ver += struct.pack(e + "I", crc) + nb + b"\0" * (60 - len(nb))
    secs = [(".modinfo", 1, modinfo), ("__versions", 1, ver), (".symtab", 2, symtab),
            (".strtab", 3, strtab), ("__ksymtab_strings", 1, ksymtab_strings)]
    shstr = b"\0"; shname = []
    for n, _, _ in secs + [(".shstrtab", 3, b"")]:
        shname.append(len(shstr)); shstr += n.encode() + b"\0"
    secs.append((".shstrtab", 3, shstr))
    ehsize = 64 if cls64 else 52
    shentsize = 64 if cls64 else 40
    body = b""; offs = []
    for _, _, d in secs:
        offs.append(ehsize + len(body)); body += d
        body += b"\0" * ((-len(body)) % 8)
    shoff = ehsize + len(body)
    ident = b"\x7fELF" + bytes([2 if cls64 else 1, 1 if little else 2, 1]) + b"\0" * 9
    if cls64:
        hdr = ident + struct.pack(e + "HHIQQQIHHHHHH", 1, 62, 1, 0, 0, shoff, 0, ehsize, 0, 0, shentsize, len(secs) + 1, len(secs))
    else:
        hdr = ident + struct.pack(e + "HHIIIIIHHHHHH", 1, 3, 1, 0, 0, shoff, 0, ehsize, 0, 0, shentsize, len(secs) + 1, len(secs))
    sh = b"\0" * shentsize
    for i, (n, typ, d) in enumerate(secs):
        link = 4 if n == ".symtab" else 0  # .strtab is section 4
        entsize = symsize if n == ".symtab" else 0
        if cls64:
            sh += struct.pack(e + "IIQQQQIIQQ", shname[i], typ, 0, 0, offs[i], len(d), link, 0, 8, entsize)
        else:
            sh += struct.pack(e + "IIIIIIIIII", shname[i], typ, 0, 0, offs[i], len(d), link, 0, 4, entsize)
    return hdr + body + sh

good = elf()
files = {
    "good-elf64-le.ko": good,
    "good-elf64-be.ko": elf(little=False),
    "good-elf32-le.ko": elf(cls64=False),
    "no-crc-exports.ko": elf(exports=(), ksymtab_strings=b"from_ksymtab\0other\0"),
    "truncated-header.ko": good[:40],
    "truncated-sections.ko": good[:len(good) - 50],
    "shoff-past-end.ko": good[:40] + struct.pack("<Q", len(good) + 4096) + good[48:],
    "shnum-huge.ko": good[:60] + struct.pack("<H", 0xffff) + good[62:],
    "xz-magic.ko": b"\xfd7zXZ\0" + b"\0" * 64,
    "empty.ko": b"",
    "not-elf.ko": b"this is not an ELF file\n",
}
# a section whose offset + size overflows: .modinfo's sh_offset near the top
bad = bytearray(good)
shoff = struct.unpack_from("<Q", bad, 40)[0]
struct.pack_into("<Q", bad, shoff + 64 + 24, 0xfffffffffffffff0)
files["modinfo-offset-overflow.ko"] = bytes(bad)
for n, d in files.items():
    open(os.path.join(out, n), "wb").write(d)
