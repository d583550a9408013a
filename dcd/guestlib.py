# SPDX-License-Identifier: GPL-2.0-or-later
"""Drive `make run` as a user does: its serial console and its QMP socket.

Used by dcd/test-run.py and dcd/guest-test.py.  `Machine` starts
dcd/run.sh (the script behind `make run`) with pipes for the serial
console, waits for the QMP socket, and offers:

  - shell(cmd): type a command at the guest's shell, return its output
    and exit status;
  - qmp.cmd(...) and qmp.wait_event(...): the QMP monitor, events kept
    in arrival order.
"""

import json
import os
import re
import select
import socket
import subprocess
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DCD = "/machine/peripheral/cxl-dcd0"


class Qmp:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rw")
        self.events = []
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
            if "event" in rsp:
                self.events.append(rsp)
            else:
                return rsp

    def wait_event(self, name, timeout=60):
        """Return the first unseen event called name, or None."""
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev["event"] == name:
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            # Events arrive between replies: ask something harmless.
            self.cmd("query-status")
            if not any(ev["event"] == name for ev in self.events):
                time.sleep(min(0.2, max(left, 0)))


class Machine:
    """dcd/run.sh with the serial console on pipes."""

    PROMPT = "/ # "

    def __init__(self, tmpdir, env=None, boot_timeout=120, argv=None):
        # make run's own QMP socket stays free for what a user pastes; the
        # test talks to a second QMP monitor, which sees the same events.
        self.sock = os.path.join(tmpdir, "qmp.sock")
        self.test_sock = os.path.join(tmpdir, "test-qmp.sock")
        self.log = []
        self.buf = ""
        runenv = dict(os.environ, QMP_SOCKET=self.sock)
        runenv.update(env or {})
        runenv["QEMU_EXTRA"] = ("%s -qmp unix:%s,server=on,wait=off" % (
            runenv.get("QEMU_EXTRA", ""), self.test_sock)).strip()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv or [os.path.join(TOP, "dcd/run.sh")],
                                     env=runenv, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.qmp = None
        self.boot_timeout = boot_timeout

    def read(self, timeout):
        """Read what the console printed within timeout seconds."""
        fd = self.proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return ""
        data = os.read(fd, 65536)
        if not data:
            raise EOFError("QEMU exited")
        text = data.decode(errors="replace").replace("\r", "")
        self.log.append(text)
        self.buf += text
        return text

    def expect(self, pattern, timeout):
        """Wait until the console output matches pattern; return match."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern, re.M)
        while True:
            m = rx.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                self.read(min(left, 1.0))
            except EOFError:
                m = rx.search(self.buf)
                if m:
                    self.buf = self.buf[m.end():]
                return m

    def connect_qmp(self, timeout=60):
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.test_sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                try:
                    while self.read(0.5):
                        pass
                except EOFError:
                    pass
                return None
            time.sleep(0.05)
        self.qmp = Qmp(self.test_sock)
        self.qmp.cmd("qmp_capabilities")
        return self.qmp

    def wait_shell(self):
        """Wait for the guest's first shell prompt; return seconds taken."""
        if self.expect(re.escape(self.PROMPT), self.boot_timeout) is None:
            return None
        return time.monotonic() - self.started

    def shell(self, cmd, timeout=60):
        """Run cmd in the guest shell; return (status, output)."""
        self.buf = ""
        self.proc.stdin.write(("%s; echo \"@@rc=$?@@\"\n" % cmd).encode())
        self.proc.stdin.flush()
        m = self.expect(r"^(.*?)@@rc=(\d+)@@$", timeout)
        if m is None:
            return None, self.buf
        out = self.log_since_command(cmd, m)
        return int(m.group(2)), out

    def log_since_command(self, cmd, m):
        # The console echoes the command line first; drop that line.
        text = "".join(self.log)
        end = text.rfind("@@rc=%s@@" % m.group(2))
        start = text.rfind("@@rc=$?@@", 0, end)
        body = text[start:end]
        body = body.split("\n", 1)[1] if "\n" in body else ""
        return body.rstrip("\n")

    def console(self):
        return "".join(self.log)

    def quit(self, timeout=30):
        if self.qmp:
            try:
                self.qmp.cmd("quit")
            except (EOFError, OSError):
                pass
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        try:
            while self.read(0.1):
                pass
        except (EOFError, ValueError, OSError):
            pass
        return self.proc.returncode


class Tap:
    def __init__(self):
        self.tests = []

    def check(self, name, cond, diag=""):
        self.tests.append((name, bool(cond), diag))
        return cond

    def finish(self):
        print("1..%d" % len(self.tests))
        for i, (name, cond, diag) in enumerate(self.tests, 1):
            print("%s %d %s" % ("ok" if cond else "not ok", i, name))
            if not cond and diag:
                for line in str(diag).splitlines()[-30:]:
                    print("# " + line)
        return 0 if all(t[1] for t in self.tests) else 1
