#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Stands in for journald on a machine without one: receives native-protocol datagrams on
SOCKET (normally /run/systemd/journal/socket) and appends each message to OUT as one JSON
object per line, so tests can check the fields a program sends with sd_journal_send().

  journal-listener.py SOCKET OUT        runs until killed
"""
import array
import json
import os
import socket
import struct
import sys


def parse(data):
    fields = {}
    i = 0
    while i < len(data):
        nl = data.find(b"\n", i)
        if nl < 0:
            break
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            fields[k.decode()] = v.decode(errors="replace")
            i = nl + 1
        else:  # KEY\n<le64 size><data>\n
            size = struct.unpack("<Q", data[nl + 1:nl + 9])[0]
            fields[line.decode()] = data[nl + 9:nl + 9 + size].decode(errors="replace")
            i = nl + 9 + size + 1
    return fields


def main():
    path, out = sys.argv[1], sys.argv[2]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    with open(out, "a") as f:
        while True:
            data, anc, _, _ = s.recvmsg(1 << 20, socket.CMSG_SPACE(4))
            for level, typ, cdata in anc:  # large messages come as a memfd
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    fd = array.array("i", cdata[:4])[0]
                    data = os.pread(fd, 1 << 24, 0)
                    os.close(fd)
            f.write(json.dumps(parse(data)) + "\n")
            f.flush()


if __name__ == "__main__":
    main()
