#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build QEMU's own libFuzzer binary, qemu-fuzz-x86_64, from the work tree
# (qemu/: the base with the series) with clang, ASan and UBSan, for the
# targets of a whole cxl-type3 device with dynamic capacity: cxl-dcd
# (tests/qtest/fuzz/cxl_dcd_fuzz.c: QMP requests and mailbox commands)
# and generic-fuzz-cxl-dcd (the generic fuzzer on the device's MMIO and
# configuration space, tests/qtest/fuzz/generic_fuzz_configs.h).
# Output: out/fuzz-qemu/build/ (FUZZ_QEMU_BUILD= to move it); configured
# once, then rebuilt incrementally like build/.
#
#   fuzz/build-device.sh

set -euo pipefail
. "$(dirname "$0")/../dcd/lib.sh"

build=${FUZZ_QEMU_BUILD:-$OUT/fuzz-qemu/build}

command -v clang >/dev/null ||
    die "no clang: apt-get install clang libclang-rt-14-dev"
[ -f "$WORKTREE/configure" ] || die "no work tree qemu/: run ./configure"

mkdir -p "$build"
if [ ! -f "$build/build.ninja" ]; then
    (cd "$build" && CC=clang CXX=clang++ "$WORKTREE/configure" \
        "${QEMU_CONFIGURE_ARGS[@]}" --enable-fuzzing --enable-asan \
        --enable-ubsan) > "$build/.dcd-configure.log" 2>&1 ||
        { tail -20 "$build/.dcd-configure.log" >&2;
          die "QEMU's configure for fuzzing failed"; }
fi
ninja -C "$build" qemu-fuzz-x86_64
link_firmware "$build"
echo "built $build/qemu-fuzz-x86_64"
