#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the libFuzzer targets of the DC engine with clang, ASan and UBSan:
# the engine (hw/cxl/cxl-dc.c), the harness and each target, against
# QEMU's headers (qemu/, build/) and build/libqemuutil.a, as the
# top-level meson.build builds the unit test.  Output: out/fuzz-dc/.
#
#   fuzz/build.sh [TARGET...]      default: all targets
#
# Needs clang and the libFuzzer/sanitizer runtimes (Debian 12:
# apt-get install clang libclang-rt-14-dev) and a configured build/
# whose libqemuutil.a is built ('make' or 'make unit' builds it).

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
out=${FUZZ_OUT:-$top/out/fuzz-dc}
qemu_src=${QEMU_SRC:-$top/qemu}
qemu_build=${QEMU_BUILD:-$top/build}
cc=${CC:-clang}
engine=${ENGINE_SRC:-$top/hw/cxl/cxl-dc.c}

all_targets=(add-response release get-extents region-layout fm-initiate
             sequence load)
targets=("${@:-${all_targets[@]}}")

die() { echo "build.sh: $*" >&2; exit 1; }

command -v "$cc" >/dev/null ||
    die "no $cc: apt-get install clang libclang-rt-14-dev"
[ -f "$qemu_build/libqemuutil.a" ] ||
    die "no $qemu_build/libqemuutil.a: run ./configure and make unit first"
echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' |
    "$cc" -x c -fsanitize=fuzzer,address,undefined -o /dev/null - 2>/dev/null ||
    die "$cc cannot link -fsanitize=fuzzer: apt-get install libclang-rt-14-dev"

# The include flags and defines of the top-level meson.build
cflags=(
    -g -O1 -std=gnu11
    -fsanitize=fuzzer-no-link,address,undefined
    -fno-sanitize-recover=undefined -fno-omit-frame-pointer
    -iquote "$top/include" -iquote "$qemu_build" -iquote "$qemu_src"
    -iquote "$qemu_src/include"
    -iquote "$qemu_src/host/include/x86_64"
    -iquote "$qemu_src/host/include/generic"
    -isystem "$qemu_src/linux-headers"
    -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -D_LARGEFILE_SOURCE
    -fno-strict-aliasing -fno-common -fwrapv -mcx16
    -Wall -Werror -Wmissing-prototypes -Wstrict-prototypes -Wundef -Wvla
    -Wwrite-strings -Wno-unused-parameter
    $(pkg-config --cflags glib-2.0)
)
# A full copy of libqemuutil.a: it is a thin archive of the objects in
# build/, which others rebuild at any time, and an archive being
# rewritten links nothing.
lib="$out/libqemuutil.a"
mkdir -p "$out/obj"
if [ ! -f "$lib" ] || [ "$qemu_build/libqemuutil.a" -nt "$lib" ]; then
    rm -f "$lib.tmp"
    if (cd "$qemu_build" && ar t libqemuutil.a >"$out/libqemuutil.list" &&
        xargs ar qcS "$lib.tmp" <"$out/libqemuutil.list" &&
        ranlib "$lib.tmp") &&
       nm "$lib.tmp" 2>/dev/null | grep ' T error_setg_internal$' >/dev/null
    then
        mv "$lib.tmp" "$lib"
    else
        rm -f "$lib.tmp"
        [ -f "$lib" ] ||
            die "cannot copy $qemu_build/libqemuutil.a (being rebuilt?)"
        echo "build.sh: keeping the earlier copy of libqemuutil.a" >&2
    fi
fi
ldflags=(
    -fsanitize=fuzzer,address,undefined
    "$lib"
    $(pkg-config --libs glib-2.0) -lm -pthread
)

objs=()
for src in "$engine" "$here/fuzz-dc-common.c" \
           "$here/fuzz-dc-ops.c"; do
    obj="$out/obj/$(basename "${src%.c}").o"
    extra=()
    # The checker's branches are no coverage worth keeping inputs for.
    if [ "$src" = "$here/fuzz-dc-common.c" ]; then
        extra=(-fno-sanitize-coverage=trace-pc-guard,trace-cmp
               -fno-sanitize-coverage=indirect-calls,pc-table
               -fno-sanitize-coverage=inline-8bit-counters)
    fi
    "$cc" "${cflags[@]}" "${extra[@]}" -c "$src" -o "$obj"
    objs+=("$obj")
done
for t in "${targets[@]}"; do
    src="$here/fuzz-dc-$t.c"
    [ -f "$src" ] || die "no target $t (${all_targets[*]})"
    "$cc" "${cflags[@]}" -c "$src" -o "$out/obj/fuzz-dc-$t.o"
    "$cc" "$out/obj/fuzz-dc-$t.o" "${objs[@]}" "${ldflags[@]}" \
        -o "$out/fuzz-dc-$t"
    echo "built $out/fuzz-dc-$t"
done
