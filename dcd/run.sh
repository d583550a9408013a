#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# make run: start the default DCD machine.  q35 with a CXL host bridge,
# one root port and a cxl-type3 device with two dynamic capacity regions
# backed by RAM, a CXL fixed memory window, and a QMP socket.  It boots
# the default guest (dcd/guest.sh: Debian's kernel, busybox, the cxl
# tools and the DCD host agent) with its serial console on the terminal.
#
# Environment (make variables):
#   GUEST=none   no guest: firmware only, the device is driven over QMP
#   KERNEL=      boot this kernel (bzImage or ELF vmlinux) instead of the
#                default guest's, with the default guest's initramfs
#   INITRD=      use this initramfs instead of the default guest's
#   MODULES=     the kernel's modules directory (.../lib/modules/VERSION,
#                as `make modules_install` writes it), added to the
#                initramfs so that /init loads the CXL and DAX drivers
#   APPEND=      more kernel command line (e.g. dcd.agent=off)
#   QMP_SOCKET   path of the QMP socket (default: out/run/qmp.sock)
#   DC_SIZE      size of the DC backend, split over the 2 regions (1G)
#   QEMU_EXTRA   more arguments for QEMU

set -euo pipefail
. "$(dirname "$0")/lib.sh"

# The release string of a bzImage (from its setup header), if it is one.
bzimage_release()
{
    local off
    [ "$(dd if="$1" bs=1 skip=514 count=4 2>/dev/null)" = HdrS ] || return 1
    off=$(od -An -t u2 -j 526 -N 2 "$1" | tr -d ' ')
    dd if="$1" bs=1 skip=$((off + 512)) count=256 2>/dev/null |
        tr '\0' '\n' | head -n 1 | cut -d' ' -f1
}

is_elf()
{
    [ "$(dd if="$1" bs=1 skip=1 count=3 2>/dev/null)" = ELF ]
}

qemu="$BUILD/qemu-system-x86_64"
[ -x "$qemu" ] || die "$qemu is not built: run ./configure && make"
[ -f /usr/share/seabios/bios-256k.bin ] ||
    die "SeaBIOS is missing (/usr/share/seabios): run ./configure"

GUEST="${GUEST:-default}"
KERNEL="${KERNEL:-}"
INITRD="${INITRD:-}"
MODULES="${MODULES:-}"
APPEND="${APPEND:-}"
case "$GUEST" in
default|none) ;;
*) die "GUEST=$GUEST: say GUEST=none for no guest, or leave it unset" ;;
esac
if [ "$GUEST" = none ] && [ -n "$KERNEL$INITRD$MODULES$APPEND" ]; then
    die "GUEST=none boots no kernel, so KERNEL, INITRD, MODULES and APPEND" \
        "make no sense with it"
fi

# Check what the user gave before anything starts.
release=
if [ -n "$KERNEL" ]; then
    [ -f "$KERNEL" ] && [ -r "$KERNEL" ] ||
        die "KERNEL=$KERNEL: no such readable file"
    if ! release=$(bzimage_release "$KERNEL") && ! is_elf "$KERNEL"; then
        die "KERNEL=$KERNEL is not a Linux kernel (neither a bzImage nor an" \
            "ELF vmlinux)"
    fi
fi
if [ -n "$INITRD" ]; then
    [ -f "$INITRD" ] && [ -r "$INITRD" ] ||
        die "INITRD=$INITRD: no such readable file"
fi
if [ -n "$MODULES" ]; then
    [ -n "$KERNEL" ] ||
        die "MODULES= goes with KERNEL=: the default kernel has its modules"
    [ -z "$INITRD" ] ||
        die "MODULES= adds to the default initramfs, which INITRD= replaces"
    [ -f "$MODULES/modules.dep" ] ||
        die "MODULES=$MODULES has no modules.dep: give the directory" \
            "'make modules_install' wrote, .../lib/modules/VERSION"
    if [ -n "$release" ] && [ "$(basename "$MODULES")" != "$release" ]; then
        die "MODULES=$MODULES is for $(basename "$MODULES"), KERNEL=$KERNEL" \
            "is $release"
    fi
fi

sock="${QMP_SOCKET:-$OUT/run/qmp.sock}"
mkdir -p "$(dirname "$sock")" "$OUT/run"
rm -f "$sock"

boot=()
if [ "$GUEST" = default ]; then
    if [ -z "$KERNEL" ] || [ -z "$INITRD" ]; then
        "$TOP/dcd/guest.sh"
    fi
    initrd="${INITRD:-$OUT/guest/initramfs.cpio.gz}"
    if [ -n "$MODULES" ]; then
        # A second archive after ours: the kernel unpacks both, in order.
        mods="$OUT/run/modules.cpio.gz"
        stage="$OUT/run/modules-root"
        rm -rf "$stage"
        mkdir -p "$stage/usr/lib/modules"
        ln -s "$(cd "$MODULES" && pwd)" \
            "$stage/usr/lib/modules/$(basename "$MODULES")"
        (cd "$stage" && find -L . -print0 | LC_ALL=C sort -z |
             cpio --null --quiet -o -H newc -L --owner=0:0) |
            gzip -1 -n > "$mods"
        cat "$initrd" "$mods" > "$OUT/run/initramfs.cpio.gz"
        initrd="$OUT/run/initramfs.cpio.gz"
    fi
    boot=(-kernel "${KERNEL:-$OUT/guest/vmlinuz}" -initrd "$initrd"
          -append "console=ttyS0 quiet panic=-1 $APPEND")
fi

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

Ask for the first one back:

  socat -t 2 - UNIX-CONNECT:$sock <<'QMP'
{"execute": "qmp_capabilities"}
{"execute": "cxl-release-dynamic-capacity", "arguments": {
  "path": "/machine/peripheral/cxl-dcd0", "host-id": 0,
  "removal-policy": "prescriptive", "region": 0,
  "extents": [{"offset": 0, "len": 134217728}]}}
QMP

Interactive: socat - UNIX-CONNECT:$sock  (or qemu/scripts/qmp/qmp-shell $sock)
EOF
if [ "$GUEST" = default ]; then
    kernel_name="${KERNEL:-the Debian kernel of out/guest}"
    echo "Guest: $kernel_name; in it, 'dcd-agent list' shows the" \
         "extents the host accepted."
else
    echo "No guest (GUEST=none): SeaBIOS finds nothing to boot."
fi
echo "Serial console below; Ctrl-A X quits, Ctrl-A C switches to the monitor."
echo

# shellcheck disable=SC2086
exec "$qemu" \
    -machine q35,cxl=on -accel tcg -m 1G -smp 2 \
    -nodefaults -display none -serial mon:stdio -no-reboot \
    -L "$BUILD/pc-bios" -L /usr/share/seabios \
    -object memory-backend-ram,id=dc-mem0,size="${DC_SIZE:-1G}" \
    -device pxb-cxl,id=cxl.0,bus=pcie.0,bus_nr=52 \
    -device cxl-rp,id=rp0,bus=cxl.0,chassis=0,slot=0,port=0 \
    -device cxl-type3,bus=rp0,volatile-dc-memdev=dc-mem0,num-dc-regions=2,id=cxl-dcd0 \
    -M cxl-fmw.0.targets.0=cxl.0,cxl-fmw.0.size=4G \
    -qmp "unix:$sock,server=on,wait=off" \
    "${boot[@]}" \
    ${QEMU_EXTRA:-}
