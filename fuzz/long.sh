#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The long fuzz run: every DC engine target (or those named) to 10
# million executions, JOBS targets at a time, then one line per target.
#
#   fuzz/long.sh [-j JOBS] [-runs=N] [TARGET...]
#
# JOBS: default the number of cores.  Builds the targets first into
# out/fuzz-long/ (FUZZ_OUT= to move it), away from the binaries and
# scratch directories that make check uses, and runs each through
# fuzz/run.sh under nice with inputs of up to 2 KiB (the largest mailbox
# payload).  ASan records no allocation stacks here: a finding is replayed
# with its crash file for the full report, as the summary says.  Per
# target: out/fuzz-long/run/TARGET/log and out/fuzz-long/reports/TARGET;
# the summary: out/fuzz-long/summary.  Exit status 0 when every target
# ran to the end with no finding.

set -uo pipefail

# One compound command, read whole before it runs: a run lasts an hour,
# and bash would otherwise read an edited script from where it stood.
{
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
export FUZZ_OUT=${FUZZ_OUT:-$top/out/fuzz-long}

all_targets=(add-response release get-extents region-layout fm-initiate
             sequence load)
jobs=$(nproc)
runs=10000000

usage() {
    sed -n '/^#   /p' "$0" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
        -j) [ $# -ge 2 ] || usage; jobs=$2; shift 2 ;;
        -j*) jobs=${1#-j}; shift ;;
        -runs=*) runs=${1#-runs=}; shift ;;
        -*) usage ;;
        *) break ;;
    esac
done
case $jobs$runs in
    *[!0-9]*) usage ;;
esac
[ "$jobs" -ge 1 ] && [ "$runs" -ge 1 ] || usage
targets=("${@:-${all_targets[@]}}")
for t in "${targets[@]}"; do
    [ -d "$here/corpus/$t" ] || { echo "long.sh: no target $t" >&2; exit 2; }
done

"$here/build.sh" "${targets[@]}" >/dev/null || exit 2
reports="$FUZZ_OUT/reports"
mkdir -p "$reports"

run_one() {
    local t=$1 rc

    ASAN_OPTIONS=malloc_context_size=0${ASAN_OPTIONS:+:$ASAN_OPTIONS} \
        nice -n 10 "$here/run.sh" "$t" -runs="$runs" -max_len=2048 \
        >"$reports/$t" 2>&1
    rc=$?
    echo "exit $rc" >>"$reports/$t"
}

echo "long.sh: ${targets[*]} to $runs executions each, $jobs at a time" \
     "(logs: $FUZZ_OUT/run/TARGET/log)"
running=0
for t in "${targets[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
    rm -f "$reports/$t"
    run_one "$t" &
    running=$((running + 1))
done
wait

failed=0
for t in "${targets[@]}"; do
    status=$(tail -n1 "$reports/$t")
    if [ "$status" = "exit 0" ]; then
        grep -m1 "^$t: " "$reports/$t"
    else
        failed=1
        grep -v '^exit ' "$reports/$t"
        if [ "$status" = "exit 1" ]; then
            echo "$t: replay a crash file for the full report:" \
                 "$FUZZ_OUT/fuzz-dc-$t CRASH-FILE"
        else
            echo "$t: fuzz/run.sh failed ($status), not an input;" \
                 "libFuzzer's log: $FUZZ_OUT/run/$t/log"
        fi
    fi
done >"$FUZZ_OUT/summary"
cat "$FUZZ_OUT/summary"
exit "$failed"
}
