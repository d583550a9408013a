#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Test 'make run': start it as a user would, talk to its QMP socket.

Prints TAP.  Checks that the machine answers qmp_capabilities and that
the example printed by 'make run' (two 128 MiB extents offered in region
0) succeeds, then quits the machine over QMP.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DCD = "/machine/peripheral/cxl-dcd0"


class Qmp:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rw")
        self.greeting = self.recv()

    def recv(self):
        line = self.file.readline()
        if not line:
            raise EOFError("QMP socket closed")
        return json.loads(line)

    def cmd(self, execute, **arguments):
        msg = {"execute": execute}
        if arguments:
            msg["arguments"] = arguments
        self.file.write(json.dumps(msg) + "\n")
        self.file.flush()
        while True:
            rsp = self.recv()
            if "event" not in rsp:
                return rsp


def main():
    tests = []

    def check(name, cond, diag=""):
        tests.append((name, cond, diag))

    tmp = tempfile.mkdtemp(prefix="dcd-run-")
    sock = os.path.join(tmp, "qmp.sock")
    env = dict(os.environ, QMP_SOCKET=sock)
    proc = subprocess.Popen(["make", "-s", "-C", TOP, "run"], env=env,
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not os.path.exists(sock) and proc.poll() is None:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    check("make run creates its QMP socket", os.path.exists(sock))
    if os.path.exists(sock):
        qmp = Qmp(sock)
        check("greeting names QEMU 10.2",
              qmp.greeting["QMP"]["version"]["qemu"]["major"] == 10 and
              qmp.greeting["QMP"]["version"]["qemu"]["minor"] == 2,
              json.dumps(qmp.greeting))
        rsp = qmp.cmd("qmp_capabilities")
        check("qmp_capabilities answers", rsp.get("return") == {},
              json.dumps(rsp))
        rsp = qmp.cmd("cxl-add-dynamic-capacity", path=DCD, **{
            "host-id": 0, "selection-policy": "prescriptive", "region": 0,
            "extents": [{"offset": 0, "len": 128 << 20},
                        {"offset": 128 << 20, "len": 128 << 20}]})
        check("the printed add example succeeds", rsp.get("return") == {},
              json.dumps(rsp))
        qmp.cmd("quit")
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    text = out.decode(errors="replace")
    check("make run prints the QMP socket path", sock in text, text)
    check("make run exits cleanly on quit", proc.returncode == 0,
          "exit status %s" % proc.returncode)

    print("1..%d" % len(tests))
    for i, (name, cond, diag) in enumerate(tests, 1):
        print("%s %d %s" % ("ok" if cond else "not ok", i, name))
        if not cond and diag:
            for line in diag.splitlines()[-20:]:
                print("# " + line)
    return 0 if all(t[1] for t in tests) else 1


if __name__ == "__main__":
    sys.exit(main())
