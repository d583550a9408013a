#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The guest test: a real Linux kernel on the DCD, booted with KERNEL=.

Prints TAP.  Boots `make run KERNEL=<the default guest's kernel>
MODULES=<its modules, copied> APPEND=dcd.agent=off`, the path a kernel
developer takes with their own kernel, then checks, from the guest's
serial console and the QMP socket:

  - the modules given with MODULES= reached the guest, and the unmodified
    kernel drivers probe the device (cxl_pci bound, mem0, `cxl list`
    reports the memory device);
  - dcd-region says in one line that this kernel has no DCD support;
  - the host agent refuses to touch a device cxl_pci owns;
  - QMP add -> the agent accepts -> the ACCEPTED event, the device's
    query and the agent's extent list agree;
  - data written through the CXL fixed memory window reads back, and
    after a QMP release that the agent answers it cannot be read;
  - a rejecting agent -> the REJECTED event, nothing changes; an agent
    that accepts the first extent only -> accepted and declined parts;
  - an offer of 100 extents (more than the event log and one response
    payload hold) accepted in parts, listed in pages; an FM release of
    20 extents; a forced release;
  - a release the host starts itself -> the RELEASED event;
  - stopping the agent gives the device back to cxl_pci.
"""

import os
import re
import shutil
import sys
import tempfile

from guestlib import DCD, TOP, Machine, Tap

MIB = 1 << 20
TAG_A = "a1a1a1a1-0000-4000-8000-00000000000a"
NO_TAG = "00000000-0000-0000-0000-000000000000"


def agent_extents(out):
    """Parse `dcd-agent list`: [(dpa, len, tag, seq)] or None."""
    head = re.search(r"^generation (\d+), (\d+) extents?$", out, re.M)
    if not head:
        return None
    ext = [(int(m.group(1), 16), int(m.group(2), 16), m.group(3),
            int(m.group(4)))
           for m in re.finditer(r"^extent \d+ dpa (0x[0-9a-f]+) len "
                                r"(0x[0-9a-f]+) tag ([0-9a-f-]{36}) seq (\d+)$",
                                out, re.M)]
    return ext if len(ext) == int(head.group(2)) else None


def device_extents(qmp):
    """The device's accepted extents from query-cxl-dynamic-capacity, as
    (dpa, len, tag, seq) like agent_extents()."""
    rsp = qmp.cmd("query-cxl-dynamic-capacity", path=DCD)
    out = []
    for dev in rsp["return"]:
        for region in dev["regions"]:
            for e in region["accepted"]:
                out.append((region["base"] + e["offset"], e["length"],
                            e.get("tag", NO_TAG), e["shared-sequence"]))
    return sorted(out), rsp


def pending_state(qmp):
    """What the device still holds for the host, for a failure's diagnosis:
    pending adds and releases, and records queued for the event log."""
    dev = qmp.cmd("query-cxl-dynamic-capacity", path=DCD)["return"][0]
    return "device: %d pending adds, %d pending releases, %d queued " \
        "records" % (len(dev["pending-adds"]), len(dev["pending-releases"]),
                     dev["queued-records"])


def main():
    tap = Tap()
    tmp = tempfile.mkdtemp(prefix="dcd-guest-")
    guest = os.path.join(TOP, "out", "guest")
    with open(os.path.join(guest, "manifest")) as f:
        kver = f.readline().split()[1]
    mods = os.path.join(tmp, "lib", "modules", kver)
    shutil.copytree(os.path.join(guest, "root", "usr", "lib", "modules",
                                 kver), mods)
    marker = "qemu-dcd-modules-%d" % os.getpid()
    open(os.path.join(mods, marker), "w").close()

    m = Machine(tmp, argv=["make", "-s", "-C", TOP, "run"], env={
        "KERNEL": os.path.join(guest, "vmlinuz"), "MODULES": mods,
        "APPEND": "dcd.agent=off"})
    qmp = m.connect_qmp(timeout=300)
    if not tap.check("make run KERNEL= MODULES= starts QEMU",
                     qmp is not None, m.console()):
        return tap.finish()
    secs = m.wait_shell()
    if not tap.check("the kernel given with KERNEL= boots to a shell "
                     "(%.1f s)" % (secs or 0), secs is not None,
                     m.console()):
        m.quit()
        return tap.finish()

    st, out = m.shell("ls /usr/lib/modules/$(uname -r)/%s" % marker)
    tap.check("the modules given with MODULES= are in the guest", st == 0,
              out)
    st, out = m.shell("ls /sys/bus/pci/drivers/cxl_pci/")
    tap.check("cxl_pci is bound to the device", "0000:35:00.0" in out, out)
    st, out = m.shell("cxl list -M -I")
    flat = out.replace(" ", "")
    tap.check("cxl list reports mem0 with no static capacity (all of it "
              "is dynamic, which this kernel does not show)",
              st == 0 and '"memdev":"mem0"' in flat and
              '"total_size":0' in flat, out)

    st, out = m.shell("dcd-region create")
    lines = [ln for ln in out.splitlines() if ln.strip()]
    tap.check("dcd-region says in one line that the kernel has no DCD "
              "support", st not in (0, None) and len(lines) == 1 and
              "DCD" in lines[0], "status %s\n%s" % (st, out))

    st, out = m.shell("dcd-agent list")
    tap.check("the agent refuses a device that cxl_pci owns",
              st not in (0, None) and "cxl_pci" in out, out)

    st, out = m.shell("dcd-agent start --policy=accept-all")
    tap.check("dcd-agent start", st == 0, out)
    st, out = m.shell("ls /sys/bus/pci/drivers/cxl_pci/")
    tap.check("the agent unbound cxl_pci", "0000:35:00.0" not in out, out)
    st, out = m.shell("dcd-agent config")
    tap.check("the agent reads the DC configuration: 2 regions of 512 MiB",
              st == 0 and out.startswith("2 regions") and
              "region 0 base 0x0 decode-len 0x20000000 len 0x20000000 "
              "block-size 0x200000" in out and
              "region 1 base 0x20000000 decode-len 0x20000000 len "
              "0x20000000 block-size 0x200000" in out, out)
    st, out = m.shell("dcd-agent --bogus list")
    tap.check("dcd-agent: an unknown option is a usage error (status 2)",
              st == 2 and "--bogus" in out, "status %s\n%s" % (st, out))
    st, out = m.shell("dcd-agent start")
    tap.check("dcd-agent: a second start is refused",
              st not in (0, None), "status %s\n%s" % (st, out))
    st, out = m.shell("dcd-agent release 0x0 0x200000")
    tap.check("dcd-agent: releasing capacity the host does not hold is "
              "refused by the device", st == 1 and "refused" in out, out)

    # Three extents, two with tag A, offered and accepted.
    rsp = qmp.cmd("cxl-add-dynamic-capacity", path=DCD, **{
        "host-id": 0, "selection-policy": "prescriptive", "region": 0,
        "tag": TAG_A,
        "extents": [{"offset": 0, "len": 64 * MIB},
                    {"offset": 128 * MIB, "len": 32 * MIB}]})
    ev = qmp.wait_event("CXL_DYNAMIC_CAPACITY_ACCEPTED", timeout=60)
    tap.check("QMP add -> the agent accepts -> ACCEPTED event",
              rsp.get("return") == {} and ev is not None and
              len(ev["data"]["accepted"]) == 2,
              "%s %s %s\n%s" % (rsp, ev, pending_state(qmp),
                                  m.console()[-1500:]))
    rsp = qmp.cmd("cxl-add-dynamic-capacity", path=DCD, **{
        "host-id": 0, "selection-policy": "prescriptive", "region": 1,
        "extents": [{"offset": 0, "len": 2 * MIB}]})
    ev = qmp.wait_event("CXL_DYNAMIC_CAPACITY_ACCEPTED", timeout=60)
    tap.check("a second add, in region 1, accepted too",
              rsp.get("return") == {} and ev is not None, "%s %s" % (rsp, ev))

    st, out = m.shell("dcd-agent list")
    dev, q = device_extents(qmp)
    got = agent_extents(out)
    tap.check("the agent's extent list equals query-cxl-dynamic-capacity",
              got is not None and sorted(got) == dev and len(dev) == 3,
              "agent %s\ndevice %s\n%s" % (got, dev, out))

    # Data through the fixed memory window, then released by the FM.
    st, out = m.shell("dcd-agent write 0x100000 0x5a5a5a5a12345678 && "
                      "dcd-agent read 0x100000")
    tap.check("data written to accepted DC memory reads back",
              st == 0 and "0x5a5a5a5a12345678" in out, out)
    rsp = qmp.cmd("cxl-release-dynamic-capacity", path=DCD, **{
        "host-id": 0, "removal-policy": "prescriptive", "region": 0,
        "extents": [{"offset": 0, "len": 64 * MIB}]})
    ev = qmp.wait_event("CXL_DYNAMIC_CAPACITY_RELEASED", timeout=60)
    tap.check("QMP release -> the agent releases -> RELEASED event",
              rsp.get("return") == {} and ev is not None and
              [(e["offset"], e["length"]) for e in ev["data"]["extents"]] ==
              [(0, 64 * MIB)] and ev["data"]["reason"] == "requested",
              "%s %s\n%s" % (rsp, ev, m.console()[-1500:]))
    st, out = m.shell("dcd-agent read 0x100000")
    # QEMU fails the access to capacity the host does not hold; x86
    # under TCG reads such a failed access as 0.
    tap.check("the released range cannot be read any more (reads 0)",
              st == 0 and re.search(r": 0x0{16}$", out, re.M) is not None,
              out)

    # A rejecting host.
    st, out = m.shell("dcd-agent stop && dcd-agent start --policy=reject")
    tap.check("the agent restarts with the reject policy", st == 0, out)
    before, _ = device_extents(qmp)
    rsp = qmp.cmd("cxl-add-dynamic-capacity", path=DCD, **{
        "host-id": 0, "selection-policy": "prescriptive", "region": 0,
        "extents": [{"offset": 256 * MIB, "len": 16 * MIB}]})
    ev = qmp.wait_event("CXL_DYNAMIC_CAPACITY_REJECTED", timeout=60)
    after, _ = device_extents(qmp)
    tap.check("a rejecting agent -> REJECTED event, nothing accepted",
              ev is not None and before == after, "%s %s %s" %
              (ev, before, after))

    # A host that takes the first extent of each offer only.
    st, out = m.shell("dcd-agent stop && dcd-agent start --policy=accept-first")
    rsp = qmp.cmd("cxl-add-dynamic-capacity", path=DCD, **{
        "host-id": 0, "selection-policy": "prescriptive", "region": 0,
        "extents": [{"offset": (256 + 2 * i) * MIB, "len": 2 * MIB}
                    for i in range(3)]})
    ev = qmp.wait_event("CXL_DYNAMIC_CAPACITY_ACCEPTED", timeout=60)
    tap.check("accept-first: 1 of 3 extents accepted, 2 declined",
              st == 0 and ev is not None and
              [e["offset"] for e in ev["data"]["accepted"]] == [256 * MIB] and
              len(ev["data"]["declined"]) == 2,
              "%s %s %s\n%s" % (rsp, ev, pending_state(qmp),
                                m.console()[-1500:]))

    # An offer longer than the event log and than one response payload.
    st, out = m.shell("dcd-agent stop && dcd-agent start --policy=accept-all")
    many = [{"offset": (2 + 2 * i) * MIB, "len": 2 * MIB} for i in range(100)]
    rsp = qmp.cmd("cxl-add-dynamic-capacity", path=DCD, **{
        "host-id": 0, "selection-policy": "prescriptive", "region": 1,
        "extents": many})
    ev = qmp.wait_event("CXL_DYNAMIC_CAPACITY_ACCEPTED", timeout=120)
    tap.check("100 extents in one offer: all accepted, in 2 response parts",
              st == 0 and ev is not None and
              len(ev["data"]["accepted"]) == 100 and
              m.expect(r"offer of 100 extents \(region 1\): accepted 100 "
                       r"\(in 2 parts\)", 10) is not None,
              "%s %s\n%s" % (rsp, ev, m.console()[-1500:]))
    st, out = m.shell("dcd-agent list")
    dev, _ = device_extents(qmp)
    got = agent_extents(out)
    tap.check("the agent pages through all %d extents, as the device has "
              "them" % len(dev), got is not None and sorted(got) == dev,
              "agent %s\ndevice %s" % (got, dev))

    rsp = qmp.cmd("cxl-release-dynamic-capacity", path=DCD, **{
        "host-id": 0, "removal-policy": "prescriptive", "region": 1,
        "extents": many[:20]})
    ev = qmp.wait_event("CXL_DYNAMIC_CAPACITY_RELEASED", timeout=60)
    tap.check("an FM release of 20 extents: the agent releases all 20",
              ev is not None and len(ev["data"]["extents"]) == 20,
              "%s %s" % (rsp, ev))
    rsp = qmp.cmd("cxl-release-dynamic-capacity", path=DCD, **{
        "host-id": 0, "removal-policy": "prescriptive", "region": 1,
        "forced-removal": True, "extents": many[20:22]})
    ev = qmp.wait_event("CXL_DYNAMIC_CAPACITY_RELEASED", timeout=60)
    tap.check("a forced release: capacity gone at once, the agent logs it",
              ev is not None and ev["data"]["reason"] == "forced" and
              m.expect(r"forced release of 2 extents", 10) is not None,
              "%s %s\n%s" % (rsp, ev, m.console()[-1500:]))

    # The host gives capacity back by itself.
    st, out = m.shell("dcd-agent release 0x8000000 0x2000000")
    ev = qmp.wait_event("CXL_DYNAMIC_CAPACITY_RELEASED", timeout=60)
    after, _ = device_extents(qmp)
    tap.check("a release the host starts -> RELEASED event",
              st == 0 and ev is not None and
              ev["data"]["reason"] == "host" and
              all(e[0] != 0x8000000 for e in after), "%s %s\n%s" %
              (ev, after, out))

    st, out = m.shell("dcd-agent stop; sleep 1; ls /sys/bus/cxl/devices/")
    tap.check("dcd-agent stop gives the device back to cxl_pci (mem0)",
              st == 0 and "mem0" in out, out)
    # read/write above committed decoder 0 of the endpoint; cxl_pci must
    # find the endpoint's decoders as the kernel left them, not committed
    st, out = m.shell("for d in /sys/bus/cxl/devices/endpoint*/decoder*;"
                      " do echo $d $(cat $d/size) $(cat $d/mode); done;"
                      " dmesg | grep -c 'failed to find decoder mapping'")
    sizes = re.findall(r"/decoder\S+ (0x[0-9a-f]+) (\S+)", out)
    tap.check("after dcd-agent stop the kernel finds no endpoint decoder"
              " committed (the agent uncommitted the one it used)",
              st is not None and len(sizes) >= 1 and
              all(int(sz, 16) == 0 and mode == "none" for sz, mode in sizes)
              and out.strip().endswith("0"), out)
    rc = m.quit()
    tap.check("QEMU quits cleanly", rc == 0, "exit status %s" % rc)
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
