#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Prove that the posted series (make series) applies with git am to a
# freshly extracted pristine base, yields exactly qemu/'s tree, and
# builds.  Writes "pass|fail NAME" lines to LOGDIR/series-check.results.
#
# Usage: dcd/series-check.sh SERIESDIR LOGDIR

set -uo pipefail
. "$(dirname "$0")/lib.sh"

series="${1:?usage: $0 SERIESDIR LOGDIR}"
logdir="${2:?usage: $0 SERIESDIR LOGDIR}"
results="$logdir/series-check.results"
dir="$OUT/series-check"
: > "$results"

report()
{
    echo "$1 series: $2" >> "$results"
}

rm -rf "$dir"
mkdir -p "$dir"
if ! dpkg-source --no-copy -x "$DOWNLOADS/$QEMU_DSC" "$dir/qemu" \
        > "$logdir/series-extract.log" 2>&1; then
    report fail "pristine base extracts"
    exit 0
fi
git -C "$dir/qemu" init -q -b dcd
git -C "$dir/qemu" add -A -f .
GIT_AUTHOR_NAME=base GIT_AUTHOR_EMAIL=base@invalid \
    git -C "$dir/qemu" commit -q --no-verify -m base

if git -C "$dir/qemu" am -q --keep-cr "$series"/*.patch \
        > "$logdir/series-am.log" 2>&1; then
    report pass "applies to the pristine base with git am"
else
    report fail "applies to the pristine base with git am"
    exit 0
fi

# The applied series and the work tree (links followed) hold the same
# files with the same contents.
if diff -r -q --exclude=.git "$dir/qemu" "$WORKTREE" \
        > "$logdir/series-diff.log" 2>&1; then
    report pass "gives the same tree as qemu/ with the added files"
else
    report fail "gives the same tree as qemu/ with the added files"
fi

mkdir -p "$dir/build"
if (cd "$dir/build" && "$dir/qemu/configure" "${QEMU_CONFIGURE_ARGS[@]}" &&
    ninja qemu-system-x86_64 $(cat "$TOP/dcd/test-binaries")) \
        > "$logdir/series-build.log" 2>&1; then
    report pass "builds qemu-system-x86_64 and the tests"
    rm -rf "$dir"
else
    report fail "builds qemu-system-x86_64 and the tests"
fi
