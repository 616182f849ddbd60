#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A raw Varlink client for the kmodd tests (NUL-terminated JSON over a unix socket).

  varlink-client.py call SOCK METHOD [PARAMS-JSON]   one call; prints the reply as one JSON line
  varlink-client.py corpus SOCK DIR                  sends every file of DIR on its own connection
                                                     (a missing final NUL is added); prints one line
                                                     per file: "NAME MESSAGES REPLIES ERRORS [error names]"
  varlink-client.py burst SOCK FILE                  every line of FILE as a oneway HandleModalias,
                                                     pipelined on one connection
  varlink-client.py connections SOCK N               opens N connections at once, calls Status on each;
                                                     prints "ok OK busy BUSY other OTHER"
"""
import json
import os
import socket
import sys


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(30)
    return s


def recv_messages(s, n, buf=b""):
    """Up to n NUL-terminated messages; fewer when the peer closes."""
    out = []
    while len(out) < n:
        while b"\0" in buf and len(out) < n:
            m, buf = buf.split(b"\0", 1)
            out.append(m)
        if len(out) >= n:
            break
        try:
            d = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not d:
            break
        buf += d
    return out, buf


def cmd_call(path, method, params=None):
    s = connect(path)
    msg = {"method": method}
    if params:
        msg["parameters"] = json.loads(params)
    s.sendall(json.dumps(msg).encode() + b"\0")
    replies, _ = recv_messages(s, 1)
    if not replies:
        print(json.dumps({"error": "closed"}))
        return 1
    print(replies[0].decode())
    return 0


def cmd_corpus(path, directory):
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as f:
            data = f.read()
        if not data.endswith(b"\0"):
            data += b"\0"
        msgs = data.split(b"\0")[:-1]
        s = connect(path)
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        replies, _ = recv_messages(s, len(msgs))
        s.close()
        errors = []
        for r in replies:
            try:
                o = json.loads(r)
            except ValueError:
                errors.append("unparsable-reply")
                continue
            if "error" in o:
                errors.append(o["error"])
        print(name, len(msgs), len(replies), len(errors), " ".join(errors))
    return 0


def cmd_burst(path, listfile):
    s = connect(path)
    with open(listfile) as f:
        lines = [l.strip() for l in f if l.strip()]
    data = b"".join(
        json.dumps({"method": "io.kmodd.Manager.HandleModalias",
                    "parameters": {"modalias": m}, "oneway": True}).encode() + b"\0"
        for m in lines)
    s.sendall(data)
    # a final call that is answered: all oneway calls before it were read
    s.sendall(json.dumps({"method": "io.kmodd.Manager.Status"}).encode() + b"\0")
    replies, _ = recv_messages(s, 1)
    s.close()
    print("sent %d" % len(lines))
    return 0 if replies else 1


def cmd_connections(path, n):
    socks = []
    for _ in range(int(n)):
        try:
            socks.append(connect(path))
        except OSError:
            break
    ok = busy = other = 0
    for s in socks:
        try:
            s.sendall(json.dumps({"method": "io.kmodd.Manager.Status"}).encode() + b"\0")
        except OSError:
            pass
    for s in socks:
        replies, _ = recv_messages(s, 1)
        if not replies:
            other += 1
            continue
        o = json.loads(replies[0])
        if o.get("error") == "io.kmodd.Manager.Busy":
            busy += 1
        elif "error" in o:
            other += 1
        else:
            ok += 1
    for s in socks:
        s.close()
    print("ok %d busy %d other %d" % (ok, busy, other))
    return 0


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, path, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if cmd == "call":
        return cmd_call(path, *args)
    if cmd == "corpus":
        return cmd_corpus(path, *args)
    if cmd == "burst":
        return cmd_burst(path, *args)
    if cmd == "connections":
        return cmd_connections(path, *args)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
