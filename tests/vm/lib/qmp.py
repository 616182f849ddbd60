#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Minimal QMP client for the VM tier.

  qmp.py SOCKET COMMAND [ARGUMENTS-JSON] [--wait-event NAME] [--timeout SECONDS]

Connects to qemu's QMP unix socket (retrying while qemu starts), negotiates
capabilities, runs COMMAND with ARGUMENTS (a JSON object) and prints the
"return" value as JSON. With --wait-event, then waits for that event (e.g.
DEVICE_DELETED after device_del) and prints it too.
Exit status: 0 success, 1 QMP error or timeout, 2 usage error.
"""
import json
import socket
import sys
import time


class QMPError(Exception):
    pass


class QMP:
    def __init__(self, path, timeout):
        self.deadline = time.monotonic() + timeout
        self.events = []
        last = None
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError as e:
                self.sock.close()
                last = e
                if time.monotonic() > self.deadline:
                    raise QMPError(f"{path}: cannot connect: {last}")
                time.sleep(0.1)
        self.buf = b""
        greeting = self.read()
        if "QMP" not in greeting:
            raise QMPError(f"{path}: not a QMP socket: {greeting}")
        self.execute("qmp_capabilities")

    def read(self):
        while b"\n" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise QMPError("timed out waiting for qemu")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise QMPError("timed out waiting for qemu") from None
            if not chunk:
                raise QMPError("qemu closed the QMP connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command, arguments=None):
        msg = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self.read()
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                err = reply["error"]
                raise QMPError(f"{command}: {err.get('class')}: {err.get('desc')}")
            return reply.get("return")

    def wait_event(self, name):
        while True:
            for e in self.events:
                if e["event"] == name:
                    return e
            self.events.clear()
            reply = self.read()
            if "event" in reply:
                self.events.append(reply)


def main(argv):
    args, wait_event, timeout = [], None, 30.0
    it = iter(argv[1:])
    for a in it:
        if a == "--wait-event":
            wait_event = next(it, None)
        elif a == "--timeout":
            timeout = float(next(it, "30"))
        else:
            args.append(a)
    if len(args) not in (2, 3) or (wait_event is None and "--wait-event" in argv):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        arguments = json.loads(args[2]) if len(args) == 3 else None
    except json.JSONDecodeError as e:
        print(f"qmp: arguments are not JSON: {e}", file=sys.stderr)
        return 2
    try:
        q = QMP(args[0], timeout)
        print(json.dumps(q.execute(args[1], arguments)))
        if wait_event:
            print(json.dumps(q.wait_event(wait_event)))
    except QMPError as e:
        print(f"qmp: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
