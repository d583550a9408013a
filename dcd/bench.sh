#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# make bench: qemu-dcd against upstream QEMU, side by side, in one run.
#
# Builds the pristine base (the pinned Debian source without the series)
# in out/bench/build beside out/bench/qemu (skipped when up to date; the
# same configure arguments and ccache as build/), builds the benchmark
# programs of bench/, runs the same workloads on both QEMU binaries,
# alternating them repetition by repetition, and prints a table of both
# medians and their ratio.  Results: out/bench/results.csv and
# out/bench/results.png; samples and logs beside them.
#
# Environment:
#   BENCH_REPS       repetitions up to 4096 extents (default 7)
#   BENCH_BIG_REPS   repetitions at 65536 extents (default 3)

set -euo pipefail
. "$(dirname "$0")/lib.sh"

reps="${BENCH_REPS:-7}"
big_reps="${BENCH_BIG_REPS:-3}"
dir="$OUT/bench"
base_src="$dir/qemu"
base_build="$dir/build"
harness="$dir/harness"
log="$dir/bench.log"
start=$(date +%s)

mkdir -p "$dir"
: > "$log"

# Tools: gnuplot draws the plot, valgrind counts instructions.
need=()
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
command -v valgrind >/dev/null || need+=(valgrind)
if [ ${#need[@]} -gt 0 ]; then
    SUDO=
    [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "bench: installing ${need[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        "${need[@]}" >> "$log" 2>&1 ||
        die "apt-get install ${need[*]} failed; see $log"
fi
[ -x "$BUILD/qemu-system-x86_64" ] ||
    die "$BUILD/qemu-system-x86_64 is not built: run ./configure && make"

# The pristine base, extracted from the pinned source package
if [ "$(cat "$base_src/.dcd-bench-dsc" 2>/dev/null)" != "$QEMU_DSC_SHA256" ]
then
    echo "bench: extracting the pristine base into out/bench/qemu"
    rm -rf "$base_src" "$base_build"
    dpkg-source --no-copy -x "$DOWNLOADS/$QEMU_DSC" "$base_src" >> "$log" 2>&1 ||
        die "dpkg-source failed; see $log"
    echo "$QEMU_DSC_SHA256" > "$base_src/.dcd-bench-dsc"
fi
args="${QEMU_CONFIGURE_ARGS[*]}"
if [ ! -f "$base_build/build.ninja" ] ||
   [ "$(cat "$base_build/.dcd-configure-args" 2>/dev/null)" != "$args" ]; then
    echo "bench: configuring the pristine base in out/bench/build"
    mkdir -p "$base_build"
    (cd "$base_build" && "$base_src/configure" "${QEMU_CONFIGURE_ARGS[@]}") \
        >> "$log" 2>&1 || die "configure of the base failed; see $log"
    echo "$args" > "$base_build/.dcd-configure-args"
fi
echo "bench: building the pristine base (nothing to do when up to date)"
ninja -C "$base_build" qemu-system-x86_64 >> "$log" 2>&1 ||
    die "build of the base failed; see $log"
# Firmware, as configure links it for build/ (the option ROMs of build/)
link_firmware "$base_build"

# The benchmark programs: against build/'s utility and qtest libraries,
# with the host driver of tests/qtest/cxl-dcd-test.c
echo "bench: building the benchmark programs"
ninja -C "$BUILD" libqemuutil.a libqom.a libevent-loop-base.a \
    tests/qtest/libqos/libqos.a >> "$log" 2>&1 ||
    die "build of QEMU's test libraries failed; see $log"
mkdir -p "$dir/driver"
drv="$dir/driver/cxl-dcd-test.c"
cp "$TOP/tests/qtest/cxl-dcd-test.c" "$drv.new"
if cmp -s "$drv.new" "$drv"; then
    rm "$drv.new"
else
    mv "$drv.new" "$drv"
fi
if [ ! -f "$harness/build.ninja" ]; then
    meson setup "$harness" "$TOP/bench" -Ddriver_dir="$dir/driver" \
        >> "$log" 2>&1 || die "meson setup of bench/ failed; see $log"
fi
ninja -C "$harness" >> "$log" 2>&1 ||
    die "build of the benchmark programs failed; see $log"

# The runs.  Each run is one process under a timeout, so that a crash
# or a hang of either QEMU costs one row, not the whole benchmark.
raw="$dir/raw.csv"
echo "variant,workload,n,value,unit,note" > "$raw"
run()
{
    local variant=$1 group=$2 n=$3 qemu rc=0
    if [ "$variant" = ours ]; then
        qemu="$BUILD/qemu-system-x86_64"
    else
        qemu="$base_build/qemu-system-x86_64"
    fi
    echo "== $variant $group $n" >> "$log"
    QTEST_QEMU_BINARY="$qemu" timeout 900 \
        "$harness/dcd-bench" "$variant" "$group" "$n" 1 \
        >> "$raw" 2>> "$log" || rc=$?
    if [ "$rc" != 0 ]; then
        echo "$variant,FAILED,$n,,,$group exit $rc" >> "$raw"
        echo "bench: $variant $group N=$n failed (exit $rc), see $log"
    fi
}

echo "bench: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= reps; r++)); do
    echo "bench: both binaries, repetition $r/$reps"
    for n in 1 64 512; do
        run ours single $n
        run upstream single $n
    done
    for n in 64 512; do
        run ours batched $n
        run upstream batched $n
    done
    run ours memory 16
    run upstream memory 16
    echo "bench: ours alone, 4096 extents, repetition $r/$reps"
    run ours single 4096
done
for ((r = 1; r <= big_reps; r++)); do
    echo "bench: ours alone, 65536 extents, repetition $r/$big_reps"
    run ours single 65536
done

echo "bench: DC engine alone, wall clock"
"$harness/dc-engine-bench" wall > "$dir/engine-wall.csv"
echo "bench: DC engine alone, callgrind"
rm -rf "$dir/callgrind"
mkdir -p "$dir/callgrind"
valgrind --tool=callgrind --dump-instr=no \
    --callgrind-out-file="$dir/callgrind/cg.out" \
    "$harness/dc-engine-bench" callgrind >> "$log" 2>&1 ||
    die "callgrind run failed; see $log"

/usr/bin/python3 "$TOP/bench/report.py" "$dir"
echo
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo |
    sed 's/.*: //'), load average now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "results: out/bench/results.csv, out/bench/results.png" \
     "(samples: out/bench/raw.csv, log: out/bench/bench.log)"
echo "total time: $(( $(date +%s) - start )) s"
