#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Test 'make run' as a user runs it, and its refusals.

Prints TAP.  'make run' boots the default guest: the test waits for its
shell, pastes the add and release examples 'make run' printed into a
shell (socat, as printed) and checks that the host agent in the guest
accepted and released the capacity (QMP events, the guest's extent
list).  'make run GUEST=none' answers QMP without a guest; KERNEL=,
INITRD= and APPEND= boot the given kernel, initramfs and command line.
Bad KERNEL, INITRD and MODULES paths stop 'make run' with one line
before QEMU starts.
"""

import os
import re
import subprocess
import sys
import tempfile

from guestlib import DCD, TOP, Machine, Tap

MAKE_RUN = ["make", "-s", "-C", TOP, "run"]


def printed_examples(text):
    """The socat snippets 'make run' printed, as shell scripts."""
    return re.findall(r"^  (socat .*?<<'QMP'\n.*?\nQMP)$", text, re.S | re.M)


def default_guest(tap):
    tmp = tempfile.mkdtemp(prefix="dcd-run-")
    m = Machine(tmp, argv=MAKE_RUN)
    qmp = m.connect_qmp(timeout=300)
    tap.check("make run creates its QMP socket",
              qmp is not None and os.path.exists(m.sock), m.console())
    if qmp is None:
        m.quit()
        return
    ver = qmp.greeting["QMP"]["version"]["qemu"]
    tap.check("greeting names QEMU 10.2",
              (ver["major"], ver["minor"]) == (10, 2), str(ver))
    secs = m.wait_shell()
    tap.check("the default guest reaches its shell (%.1f s from make run "
              "to the prompt)" % (secs or 0), secs is not None,
              m.console())
    if secs is None:
        m.quit()
        return
    text = m.console()
    tap.check("make run prints the QMP socket path", m.sock in text, text)
    tap.check("the guest's kernel drivers found the device (mem0)",
              "CXL memory device: mem0" in text, text)
    tap.check("the host agent started in the guest",
              "dcd-agent answers the DCD" in text, text)
    examples = printed_examples(text)
    tap.check("make run prints an add and a release example",
              len(examples) == 2, text)
    if len(examples) != 2:
        m.quit()
        return

    run = subprocess.run(["bash", "-c", examples[0]], capture_output=True,
                         text=True, timeout=30)
    tap.check("the printed add example succeeds",
              run.stdout.count('"return": {}') == 2, run.stdout + run.stderr)
    ev = qmp.wait_event("CXL_DYNAMIC_CAPACITY_ACCEPTED", timeout=60)
    tap.check("the guest's host agent accepts the offer",
              ev is not None and len(ev["data"]["accepted"]) == 2,
              "%s\n%s" % (ev, m.console()[-2000:]))
    status, out = m.shell("dcd-agent list")
    tap.check("dcd-agent list in the guest shows the two extents",
              status == 0 and re.search(r"^generation \d+, 2 extents$", out,
                                        re.M) and
              re.search(r"^extent 0 dpa 0x0 len 0x8000000 ", out, re.M) and
              re.search(r"^extent 1 dpa 0x8000000 len 0x8000000 ", out, re.M),
              out)

    run = subprocess.run(["bash", "-c", examples[1]], capture_output=True,
                         text=True, timeout=30)
    tap.check("the printed release example succeeds",
              run.stdout.count('"return": {}') == 2, run.stdout + run.stderr)
    ev = qmp.wait_event("CXL_DYNAMIC_CAPACITY_RELEASED", timeout=60)
    tap.check("the guest's host agent releases the extent asked for",
              ev is not None and
              [(e["offset"], e["length"]) for e in ev["data"]["extents"]] ==
              [(0, 128 << 20)],
              "%s\n%s" % (ev, m.console()[-2000:]))
    q = qmp.cmd("query-cxl-dynamic-capacity", path=DCD)["return"]
    status, out = m.shell("dcd-agent list")
    tap.check("device and guest agree on what is left",
              status == 0 and re.search(r"^generation \d+, 1 extents?$", out,
                                        re.M) and
              re.search(r"^extent 0 dpa 0x8000000 len 0x8000000 ", out,
                        re.M) is not None,
              "%s\n%s" % (q, out))
    rc = m.quit()
    tap.check("make run exits cleanly on quit", rc == 0, "exit status %s" % rc)


def no_guest(tap):
    tmp = tempfile.mkdtemp(prefix="dcd-run-")
    m = Machine(tmp, env={"GUEST": "none"}, argv=MAKE_RUN)
    qmp = m.connect_qmp(timeout=120)
    ok = qmp is not None
    if ok:
        rsp = qmp.cmd("cxl-add-dynamic-capacity", path=DCD, **{
            "host-id": 0, "selection-policy": "prescriptive", "region": 0,
            "extents": [{"offset": 0, "len": 128 << 20}]})
        ok = rsp.get("return") == {}
    rc = m.quit()
    tap.check("make run GUEST=none answers QMP with no guest",
              ok and rc == 0 and "No guest (GUEST=none)" in m.console(),
              m.console())


def own_initrd(tap):
    """make run KERNEL= INITRD=: the user's initramfs, not ours."""
    tmp = tempfile.mkdtemp(prefix="dcd-run-")
    guest = os.path.join(TOP, "out", "guest")
    extra = os.path.join(tmp, "extra")
    os.makedirs(extra)
    open(os.path.join(extra, "qemu-dcd-own-initrd"), "w").close()
    # Ours with one more file: the kernel unpacks concatenated archives.
    initrd = os.path.join(tmp, "initrd.cpio.gz")
    with open(initrd, "wb") as out:
        with open(os.path.join(guest, "initramfs.cpio.gz"), "rb") as f:
            out.write(f.read())
        out.flush()
        subprocess.run("find . | cpio --quiet -o -H newc | gzip -1",
                       shell=True, cwd=extra, stdout=out, check=True)
    m = Machine(tmp, argv=MAKE_RUN, env={
        "KERNEL": os.path.join(guest, "vmlinuz"), "INITRD": initrd,
        "APPEND": "dcd.agent=off"})
    ok = m.connect_qmp(timeout=300) is not None and m.wait_shell()
    st, out = m.shell("ls /qemu-dcd-own-initrd && grep -o dcd.agent=off "
                      "/proc/cmdline") if ok else (None, "")
    m.quit()
    tap.check("make run KERNEL= INITRD= APPEND= boots the given initramfs "
              "with the given command line", ok and st == 0,
              "%s\n%s" % (out, m.console()[-1500:]))


def refusals(tap):
    tmp = tempfile.mkdtemp(prefix="dcd-run-")
    readme = os.path.join(TOP, "README.md")
    nomods = os.path.join(tmp, "lib", "modules", "6.12.0")
    os.makedirs(nomods)
    cases = [
        ({"KERNEL": "/nonexistent/bzImage"},
         "KERNEL=/nonexistent/bzImage: no such readable file"),
        ({"KERNEL": readme}, "is not a Linux kernel"),
        ({"INITRD": "/nonexistent/initrd"},
         "INITRD=/nonexistent/initrd: no such readable file"),
        ({"MODULES": nomods}, "MODULES= goes with KERNEL="),
        ({"KERNEL": os.path.join(TOP, "out/guest/vmlinuz"),
          "MODULES": nomods}, "has no modules.dep"),
        ({"GUEST": "none", "KERNEL": readme}, "GUEST=none boots no kernel"),
        ({"GUEST": "debian"}, "GUEST=debian: say GUEST=none"),
    ]
    for env, msg in cases:
        sock = os.path.join(tmp, "qmp.sock")
        run = subprocess.run(MAKE_RUN, env=dict(os.environ, QMP_SOCKET=sock,
                                                **env),
                             stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=120)
        errors = [ln for ln in run.stderr.splitlines()
                  if ln.startswith("error: ")]
        tap.check("make run %s: refused before QEMU starts" %
                  " ".join("%s=%s" % kv for kv in env.items()),
                  run.returncode != 0 and len(errors) == 1 and
                  msg in errors[0] and not os.path.exists(sock) and
                  "QMP socket" not in run.stdout,
                  run.stdout + run.stderr)


def main():
    tap = Tap()
    default_guest(tap)
    no_guest(tap)
    own_initrd(tap)
    refusals(tap)
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
