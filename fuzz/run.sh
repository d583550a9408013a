#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Run one DC engine fuzz target over a scratch copy of its seed corpus
# (the repo's corpus/ stays as it is) with its dictionary, and print the
# number of executions, their rate and the result.
#
#   fuzz/run.sh TARGET SECONDS|-runs=N [libFuzzer options...]
#
# TARGET: add-response release get-extents region-layout fm-initiate
# sequence load (the engine), or one of the whole device's in QEMU's own
# fuzzer (fuzz/build-device.sh): device (tests/qtest/fuzz/cxl_dcd_fuzz.c,
# QMP requests and mailbox commands) and generic (QEMU's generic fuzzer
# on the device's registers).  Builds the target first when it is
# missing.  Scratch
# directory: out/fuzz-dc/run/TARGET/ (corpus/, log, crash-* files), or
# out/fuzz-dc/run/TARGET.PID/ while another run of TARGET holds it.
# Exit status: 0 when no input failed, 1 when one did, 2 when the target
# could not be run.

set -uo pipefail

# One compound command, read whole before it runs: a run lasts an hour,
# and bash would otherwise read an edited script from where it stood.
{
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
out=${FUZZ_OUT:-$top/out/fuzz-dc}

if [ $# -lt 2 ]; then
    sed -n '/^#   /p' "$0" >&2
    exit 2
fi
target=$1 limit=$2
shift 2
if [ ! -d "$here/corpus/$target" ]; then
    echo "run.sh: no target $target" >&2
    exit 2
fi
if [ "$target" = device ] || [ "$target" = generic ]; then
    bin=${FUZZ_QEMU_BUILD:-$top/out/fuzz-qemu/build}/qemu-fuzz-x86_64
    [ -x "$bin" ] || "$here/build-device.sh" >/dev/null || exit 2
    # QEMU's --enable-ubsan recovers from what it finds: stop there
    export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}
    # QEMU's fuzzer takes its target as the first argument
    if [ "$target" = device ]; then
        first=(--fuzz-target=cxl-dcd)
    else
        first=(--fuzz-target=generic-fuzz-cxl-dcd)
    fi
else
    first=()
    bin="$out/fuzz-dc-$target"
    [ -x "$bin" ] || "$here/build.sh" "$target" || exit 2
fi

case $limit in
    -runs=*) budget=("$limit") ;;
    *[!0-9]*|'') echo "run.sh: $limit is not SECONDS or -runs=N" >&2; exit 2 ;;
    *) budget=(-max_total_time="$limit") ;;
esac

# A second run of the same target (make check during a long run) gets a
# scratch directory of its own instead of deleting the first one's.
work="$out/run/$target"
mkdir -p "$out/run"
exec 9>"$work.lock"
if ! flock -n 9; then
    work="$out/run/$target.$$"
fi
rm -rf "$work"
mkdir -p "$work/corpus"
cp "$here/corpus/$target"/* "$work/corpus/"

start=$(date +%s)
"$bin" "${first[@]}" "${budget[@]}" -dict="$here/$target.dict" -max_len=4096 \
    -print_final_stats=1 -artifact_prefix="$work/" "$@" "$work/corpus" \
    >"$work/log" 2>&1
rc=$?
secs=$(( $(date +%s) - start ))

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log")
units=$(ls "$work/corpus" | wc -l)
if [ "$rc" = 0 ]; then
    result=OK
else
    result="FAILED (exit $rc): $(ls "$work"/crash-* "$work"/leak-* \
        "$work"/timeout-* "$work"/oom-* 2>/dev/null | tr '\n' ' ')"
    grep -m1 -A1 -E 'invariant broken|ERROR: ' "$work/log"
fi
echo "$target: ${execs:-?} executions in ${secs}s, ${rate:-?} exec/s," \
     "corpus $units inputs: $result (log: $work/log)"
[ "$rc" = 0 ]
exit
}
