#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# make check: every test of qemu-dcd, one PASS/FAIL line each, then one
# closing line "N passed, N failed".
#
#   unit tests and qtests   each TAP test case counts as one test
#   checkpatch              one test per patch of the posted series
#   series                  the posted series applies to a pristine base,
#                           gives exactly qemu/'s tree, and builds
#
#   run                     make run boots the guest, whose host agent
#                           answers the QMP examples make run prints
#   guest                   make run KERNEL= MODULES=: the kernel's CXL
#                           drivers, the host agent, data through the
#                           fixed memory window
#   sanitizers              unit tests and qtests on an ASan+UBSan build
#   fuzz                    the engine's fuzz targets, 10 s each, the
#                           long-run script (fuzz/long.sh) briefly, and
#                           the whole device's two targets in QEMU's
#                           own fuzzer (device, generic), 10 s each
#
# CHECK_ONLY=unit,qtest,run,guest,sanitizers,fuzz,checkpatch,series limits
# the groups run.

set -uo pipefail
. "$(dirname "$0")/lib.sh"

LOGDIR="$OUT/check"
rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"
passed=0
failed=0
skipped=0

want()
{
    [ -z "${CHECK_ONLY:-}" ] || [[ ",$CHECK_ONLY," == *",$1,"* ]]
}

result()
{
    local status="$1" name="$2"
    case "$status" in
    pass) passed=$((passed + 1)); echo "PASS $name" ;;
    skip) skipped=$((skipped + 1)); echo "SKIP $name" ;;
    *) failed=$((failed + 1)); echo "FAIL $name" ;;
    esac
}

# Run one TAP-speaking test binary and count its test cases.
run_tap()
{
    local name="$1" log="$LOGDIR/${1//\//-}.log" line n=0
    shift
    # A subshell, so that a crash is reported in the log, not here.
    ("$@" --tap) > "$log" 2>&1
    local rc=$?
    while IFS= read -r line; do
        case "$line" in
        "ok "*"# SKIP"*) result skip "$name: ${line#ok }"; n=$((n + 1)) ;;
        "ok "*) result pass "$name: ${line#ok }"; n=$((n + 1)) ;;
        "not ok "*) result fail "$name: ${line#not ok }"; n=$((n + 1)) ;;
        esac
    done < "$log"
    if [ $rc != 0 ] || [ $n = 0 ]; then
        result fail "$name: exit status $rc after $n test cases" \
            "(see ${log#$TOP/})"
        tail -20 "$log" | sed 's/^/    /'
    fi
}

export QTEST_QEMU_BINARY="$BUILD/qemu-system-x86_64"
# Where qtests find files of the source tree (the docs they check)
export G_TEST_SRCDIR="$WORKTREE/tests/qtest"
export QTEST_QEMU_IMG="$BUILD/qemu-img"

if want unit; then
    for t in $(grep '^tests/unit/' "$TOP/dcd/test-binaries"); do
        run_tap "${t#tests/}" "$BUILD/$t"
    done
fi

if want qtest; then
    for t in $(grep '^tests/qtest/' "$TOP/dcd/test-binaries"); do
        run_tap "${t#tests/}" "$BUILD/$t"
    done
fi

# The guest image first, so that the tests below do not time its build.
if want run || want guest; then
    if "$TOP/dcd/guest.sh" > "$LOGDIR/guest-build.log" 2>&1; then
        result pass "guest: build the guest image ($(sed -n 's/^kernel //p' \
            "$OUT/guest/manifest"))"
    else
        result fail "guest: build the guest image" \
            "(see ${LOGDIR#$TOP/}/guest-build.log)"
        tail -5 "$LOGDIR/guest-build.log" | sed 's/^/    /'
    fi
fi

if want run; then
    run_tap "make-run" python3 "$TOP/dcd/test-run.py"
fi

if want guest; then
    run_tap "guest/dcd-region" python3 "$TOP/dcd/dcd-region-test.py"
    run_tap "guest" python3 "$TOP/dcd/guest-test.py"
fi

# The unit tests and qtests again, against a build with AddressSanitizer
# and UndefinedBehaviorSanitizer (out/san/build), any report fatal.
if want sanitizers; then
    san="$OUT/san/build"
    mkdir -p "$san"
    if { [ -f "$san/build.ninja" ] ||
         (cd "$san" && "$WORKTREE/configure" "${QEMU_CONFIGURE_ARGS[@]}" \
              --enable-asan --enable-ubsan); } > "$LOGDIR/san-build.log" 2>&1 &&
       ninja -C "$san" qemu-system-x86_64 $(cat "$TOP/dcd/test-binaries") \
           >> "$LOGDIR/san-build.log" 2>&1 && link_firmware "$san"; then
        result pass "sanitizers: build with ASan and UBSan"
        saved_binary="$QTEST_QEMU_BINARY"
        export QTEST_QEMU_BINARY="$san/qemu-system-x86_64"
        # QEMU's own exit-time leaks are not ours to report here.
        export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
        export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
        for t in $(cat "$TOP/dcd/test-binaries"); do
            run_tap "sanitizers/${t#tests/}" "$san/$t"
        done
        unset ASAN_OPTIONS UBSAN_OPTIONS
        export QTEST_QEMU_BINARY="$saved_binary"
    else
        result fail "sanitizers: build with ASan and UBSan" \
            "(see ${LOGDIR#$TOP/}/san-build.log)"
    fi
fi

# Run each fuzz target named for a short bounded time over its seed
# corpus (fuzz/run.sh; longer runs are a documented command).
fuzz_briefly()
{
    local t

    for t in "$@"; do
        if "$TOP/fuzz/run.sh" "$t" "${FUZZ_SECONDS:-10}" \
                > "$LOGDIR/fuzz-$t.log" 2>&1; then
            result pass "fuzz: $(grep -m1 "^$t: " "$LOGDIR/fuzz-$t.log")"
        else
            result fail "fuzz: $t (see ${LOGDIR#$TOP/}/fuzz-$t.log)"
            tail -5 "$LOGDIR/fuzz-$t.log" | sed 's/^/    /'
        fi
    done
}

# The DC engine's libFuzzer targets, then the whole device's
if want fuzz; then
    if "$TOP/fuzz/build.sh" > "$LOGDIR/fuzz-build.log" 2>&1; then
        result pass "fuzz: build the engine's libFuzzer targets"
        fuzz_briefly add-response release get-extents region-layout \
                     fm-initiate sequence load
        # The documented long run, briefly, in a directory of its own
        if FUZZ_OUT="$OUT/check/fuzz-long" "$TOP/fuzz/long.sh" -runs=2000 \
                > "$LOGDIR/fuzz-long.log" 2>&1 &&
           [ "$(grep -c ': 2000 executions in .*: OK' \
                "$LOGDIR/fuzz-long.log")" = 7 ]; then
            result pass "fuzz: fuzz/long.sh -runs=2000: 7 targets, no finding"
        else
            result fail "fuzz: fuzz/long.sh (see ${LOGDIR#$TOP/}/fuzz-long.log)"
            tail -5 "$LOGDIR/fuzz-long.log" | sed 's/^/    /'
        fi
    else
        result fail "fuzz: build (see ${LOGDIR#$TOP/}/fuzz-build.log)"
    fi
    # The whole device, in QEMU's own fuzzer built with clang from
    # qemu/ (out/fuzz-qemu/build)
    if "$TOP/fuzz/build-device.sh" > "$LOGDIR/fuzz-device-build.log" 2>&1
    then
        result pass "fuzz: build qemu-fuzz-x86_64"
        fuzz_briefly device generic
    else
        result fail "fuzz: build qemu-fuzz-x86_64" \
            "(see ${LOGDIR#$TOP/}/fuzz-device-build.log)"
    fi
fi

series="$OUT/series"
if want checkpatch || want series; then
    if "$TOP/dcd/series.sh" "$series" > "$LOGDIR/series.log" 2>&1; then
        result pass "series: make series writes the series"
    else
        result fail "series: make series writes the series"
        sed 's/^/    /' "$LOGDIR/series.log"
    fi
    if "$TOP/dcd/worktree.sh" status > "$LOGDIR/worktree.log" 2>&1; then
        result pass "series: qemu/ and patches/ agree"
    else
        result fail "series: qemu/ and patches/ agree (make export)"
    fi
fi

if want checkpatch; then
    for p in "$series"/*.patch; do
        [ -f "$p" ] || continue
        log="$LOGDIR/checkpatch-$(basename "$p" .patch).log"
        # --strict: a warning fails the patch as an error does.
        if (cd "$WORKTREE" && ./scripts/checkpatch.pl --strict --color=never \
                --patch "$p") > "$log" 2>&1; then
            result pass "checkpatch: $(basename "$p")"
        else
            result fail "checkpatch: $(basename "$p")"
            sed 's/^/    /' "$log"
        fi
    done
fi

if want series; then
    "$TOP/dcd/series-check.sh" "$series" "$LOGDIR"
    while read -r status name; do
        result "$status" "$name"
    done < "$LOGDIR/series-check.results"
fi

summary="$passed passed, $failed failed"
[ $skipped = 0 ] || summary="$summary, $skipped skipped"
echo "$summary"
[ $failed = 0 ]
