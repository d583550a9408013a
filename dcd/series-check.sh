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

# Every patch builds on its own: build the tree after each one, in order
# (the first build is full, with ccache; the others are incremental).
mkdir -p "$dir/build"
if ! (cd "$dir/build" &&
      "$dir/qemu/configure" "${QEMU_CONFIGURE_ARGS[@]}") \
        > "$logdir/series-configure.log" 2>&1; then
    report fail "configures"
    exit 0
fi
# QEMU and those of our test binaries that exist at this point
build_all()
{
    local t
    ninja -C "$1" qemu-system-x86_64 || return 1
    for t in $(cat "$TOP/dcd/test-binaries"); do
        if ninja -C "$1" -t query "$t" >/dev/null 2>&1; then
            ninja -C "$1" "$t" || return 1
        fi
    done
}

npatches=$(ls "$series"/*.patch | wc -l)
all_built=1
for c in $(git -C "$dir/qemu" rev-list --reverse "HEAD~$npatches..HEAD"); do
    subject=$(git -C "$dir/qemu" log -1 --format=%s "$c")
    git -C "$dir/qemu" checkout -q "$c"
    if build_all "$dir/build" > "$logdir/series-build.log" 2>&1; then
        report pass "builds after '$subject'"
    else
        report fail "builds after '$subject' (see out/check/series-build.log)"
        all_built=
        break
    fi
done
[ -z "$all_built" ] || rm -rf "$dir"
