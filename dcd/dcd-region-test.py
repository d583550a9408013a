#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Test guest/bin/dcd-region against a sysfs tree shaped like the one the
Linux DCD driver makes, under the guest's own busybox shell.

Prints TAP.  No kernel has the DCD driver here, so the guest test can
only see dcd-region refuse; this test checks what it writes where on a
kernel that has it: the partition name found from the root decoder
(dynamic_ram_a or dynamic_ram_1), the endpoint decoder's mode and DPA
size, the region's geometry, target, commit and bind, the sizes it
refuses, and what `list` prints of extents and dax devices.
"""

import os
import subprocess
import sys
import tempfile

from guestlib import TOP, Tap

SCRIPT = os.path.join(TOP, "guest", "bin", "dcd-region")
BUSYBOX = os.path.join(TOP, "out", "guest", "root", "usr", "bin", "busybox")
PART_SIZE = 512 << 20


def put(path, text=""):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def get(path):
    with open(path) as f:
        return f.read().strip()


def fake_sysfs(partition):
    """A sysfs root with mem0, its endpoint and a root decoder; the root
    decoder offers create_<partition>_region when partition is set."""
    root = tempfile.mkdtemp(prefix="dcd-region-")
    dev = os.path.join(root, "bus", "cxl", "devices")
    put(os.path.join(dev, "decoder0.0", "size"), "0x100000000\n")
    put(os.path.join(dev, "mem0", "ram", "size"), "0x0\n")
    ep = os.path.join(dev, "endpoint2")
    os.makedirs(ep)
    os.symlink(os.path.join(dev, "mem0"), os.path.join(ep, "uport"))
    for d in ("decoder2.0", "decoder2.1"):
        put(os.path.join(ep, d, "dpa_size"), "0\n")
        put(os.path.join(ep, d, "mode"), "none\n")
        os.symlink(os.path.join(ep, d), os.path.join(dev, d))
    put(os.path.join(root, "bus", "cxl", "drivers", "cxl_region", "bind"))
    if partition:
        put(os.path.join(dev, "decoder0.0",
                         "create_%s_region" % partition), "region0\n")
        put(os.path.join(dev, "mem0", partition, "size"),
            "%#x\n" % PART_SIZE)
        # The kernel makes region0 when its name is written to the root
        # decoder; here it is there from the start, empty.
        for f in ("interleave_granularity", "interleave_ways", "size",
                  "target0", "commit", "mode"):
            put(os.path.join(dev, "region0", f))
    return root, dev


def dcd_region(root, *args):
    env = dict(os.environ, DCD_REGION_SYSFS=root)
    run = subprocess.run([BUSYBOX, "sh", SCRIPT] + list(args), env=env,
                         capture_output=True, text=True, timeout=30)
    return run.returncode, run.stdout, run.stderr


def main():
    tap = Tap()
    if not os.access(BUSYBOX, os.X_OK):
        print("1..0 # SKIP no guest busybox: run dcd/guest.sh")
        return 0

    root, dev = fake_sysfs(None)
    for args in (["create"], ["list"]):
        rc, out, err = dcd_region(root, *args)
        tap.check("no DCD driver: dcd-region %s says so in one line, "
                  "status 2" % args[0],
                  rc == 2 and out == "" and len(err.splitlines()) == 1 and
                  "has no DCD support" in err, "%s %r %r" % (rc, out, err))

    for part in ("dynamic_ram_a", "dynamic_ram_1"):
        root, dev = fake_sysfs(part)
        rc, out, err = dcd_region(root, "create", "256M")
        reg = os.path.join(dev, "region0")
        dec = os.path.join(dev, "decoder2.0")
        tap.check("%s: create 256M writes the endpoint decoder" % part,
                  rc == 0 and get(os.path.join(dec, "mode")) == part and
                  get(os.path.join(dec, "dpa_size")) == str(256 << 20),
                  "%s %r %r" % (rc, out, err))
        tap.check("%s: create makes, sizes, targets, commits and binds "
                  "region0" % part,
                  get(os.path.join(dev, "decoder0.0",
                                   "create_%s_region" % part)) ==
                  "region0" and
                  get(os.path.join(reg, "interleave_ways")) == "1" and
                  get(os.path.join(reg, "size")) == str(256 << 20) and
                  get(os.path.join(reg, "target0")) == "decoder2.0" and
                  get(os.path.join(reg, "commit")) == "1" and
                  get(os.path.join(root, "bus", "cxl", "drivers",
                                   "cxl_region", "bind")) == "region0" and
                  out.startswith("region0: %s, %d bytes" % (part, 256 << 20)),
                  out + err)

    root, dev = fake_sysfs("dynamic_ram_a")
    rc, out, err = dcd_region(root, "create")
    tap.check("create without a size takes the whole partition (sysfs "
              "gives it in hex)",
              rc == 0 and get(os.path.join(dev, "region0", "size")) ==
              str(PART_SIZE), out + err)

    root, dev = fake_sysfs("dynamic_ram_a")
    for size in ("1G", "12x", "0", "0xg", "M", "1.5G"):
        rc, out, err = dcd_region(root, "create", size)
        tap.check("create %s is refused and writes nothing" % size,
                  rc == 1 and err.startswith("dcd-region: ") and
                  get(os.path.join(dev, "decoder2.0", "mode")) == "none" and
                  get(os.path.join(dev, "region0", "size")) == "",
                  "%s %r" % (rc, err))

    put(os.path.join(dev, "region0", "mode"), "dynamic_ram_a\n")
    put(os.path.join(dev, "region0", "size"), "%d\n" % PART_SIZE)
    dr = os.path.join(dev, "region0", "dax_region0")
    for i, (off, ln) in enumerate([(0, 128 << 20), (256 << 20, 2 << 20)]):
        put(os.path.join(dr, "extent0.%d" % i, "offset"), "%#x\n" % off)
        put(os.path.join(dr, "extent0.%d" % i, "length"), "%#x\n" % ln)
        put(os.path.join(dr, "extent0.%d" % i, "uuid"),
            "5f1a9d1c-3b7e-4c2a-9e61-0c8d2f4b7a10\n")
    put(os.path.join(dr, "dax0.1", "size"), "%d\n" % (128 << 20))
    rc, out, err = dcd_region(root, "list")
    tap.check("list shows the region, its extents and its dax device",
              rc == 0 and out.splitlines() == [
                  "region0: dynamic_ram_a, size %d" % PART_SIZE,
                  "  extent0.0 offset 0x0 length 0x8000000 uuid "
                  "5f1a9d1c-3b7e-4c2a-9e61-0c8d2f4b7a10",
                  "  extent0.1 offset 0x10000000 length 0x200000 uuid "
                  "5f1a9d1c-3b7e-4c2a-9e61-0c8d2f4b7a10",
                  "  dax0.1 size %d" % (128 << 20)], out + err)

    rc, out, err = dcd_region(root, "frobnicate")
    tap.check("an unknown subcommand prints the usage, status 1",
              rc == 1 and "usage: dcd-region" in err, err)
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
