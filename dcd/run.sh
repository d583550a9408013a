#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# make run: start the default DCD machine.  q35 with a CXL host bridge,
# one root port and a cxl-type3 device with two dynamic capacity regions
# backed by RAM, a CXL fixed memory window, and a QMP socket.  Until the
# repo builds a guest, SeaBIOS runs and finds nothing to boot; the device
# is driven over QMP.
#
# Environment:
#   QMP_SOCKET   path of the QMP socket (default: out/run/qmp.sock)
#   DC_SIZE      size of the DC backend, split over the 2 regions (1G)
#   QEMU_EXTRA   more arguments for QEMU

set -euo pipefail
. "$(dirname "$0")/lib.sh"

qemu="$BUILD/qemu-system-x86_64"
[ -x "$qemu" ] || die "$qemu is not built: run ./configure && make"
[ -f /usr/share/seabios/bios-256k.bin ] ||
    die "SeaBIOS is missing (/usr/share/seabios): run ./configure"

sock="${QMP_SOCKET:-$OUT/run/qmp.sock}"
mkdir -p "$(dirname "$sock")"
rm -f "$sock"

cat <<EOF
qemu-dcd: DCD machine, device /machine/peripheral/cxl-dcd0
QMP socket: $sock
Offer two 128 MiB extents of region 0 to the host (from another terminal):

  socat -t 2 - UNIX-CONNECT:$sock <<'QMP'
{"execute": "qmp_capabilities"}
{"execute": "cxl-add-dynamic-capacity", "arguments": {
  "path": "/machine/peripheral/cxl-dcd0", "host-id": 0,
  "selection-policy": "prescriptive", "region": 0,
  "extents": [{"offset": 0, "len": 134217728},
              {"offset": 134217728, "len": 134217728}]}}
QMP

Interactive: socat - UNIX-CONNECT:$sock  (or qemu/scripts/qmp/qmp-shell $sock)
Serial console below; Ctrl-A X quits, Ctrl-A C switches to the monitor.
EOF

# shellcheck disable=SC2086
exec "$qemu" \
    -machine q35,cxl=on -accel tcg -m 1G -smp 2 \
    -nodefaults -display none -serial mon:stdio \
    -L "$BUILD/pc-bios" -L /usr/share/seabios \
    -object memory-backend-ram,id=dc-mem0,size="${DC_SIZE:-1G}" \
    -device pxb-cxl,id=cxl.0,bus=pcie.0,bus_nr=52 \
    -device cxl-rp,id=rp0,bus=cxl.0,chassis=0,slot=0,port=0 \
    -device cxl-type3,bus=rp0,volatile-dc-memdev=dc-mem0,num-dc-regions=2,id=cxl-dcd0 \
    -M cxl-fmw.0.targets.0=cxl.0,cxl-fmw.0.size=4G \
    -qmp "unix:$sock,server=on,wait=off" \
    ${QEMU_EXTRA:-}
