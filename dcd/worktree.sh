#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The base work tree qemu/: a git repository holding the pinned base as
# one commit (tag dcd-base), one commit per patch of patches/series on
# top, and our added files linked in (ignored by git there).
#
#   prepare   create or update qemu/ from downloads/ and patches/
#   export    write qemu/'s commits since dcd-base back to patches/
#   reset     discard qemu/'s commits and re-apply patches/
#   status    say whether qemu/ and patches/ agree

set -euo pipefail
. "$(dirname "$0")/lib.sh"

STATE="$WORKTREE/.git/dcd-applied"
LINKED="$WORKTREE/.git/dcd-linked"

wgit()
{
    git -C "$WORKTREE" "$@"
}

# A digest of patches/ (series and the patches it lists).
patches_digest()
{
    local p
    {
        cat "$TOP/patches/series"
        while read -r p; do
            cat "$TOP/patches/$p"
        done < <(series_list)
    } | sha256sum | cut -d' ' -f1
}

series_list()
{
    sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$TOP/patches/series"
}

# Write the commits dcd-base..HEAD as patches into directory $1, with the
# options that keep the output byte-stable: no commit hashes, no dates,
# no version signature, full blob ids.
format_patches()
{
    local dir="$1" repo="${2:-$WORKTREE}"
    git -C "$repo" -c diff.noprefix=false -c format.signature= \
        format-patch -q --zero-commit --no-signature --full-index -N \
        --no-renames -o "$dir" dcd-base..HEAD
    sed -i '/^Date: /d' "$dir"/*.patch 2>/dev/null || true
}

create_base()
{
    local tmp="$TOP/.qemu.tmp"
    rm -rf "$tmp"
    echo "extracting the base into qemu/"
    dpkg-source --no-copy -x "$DOWNLOADS/$QEMU_DSC" "$tmp" > "$TOP/.qemu.log" 2>&1 ||
        die "dpkg-source could not extract $QEMU_DSC, see .qemu.log"
    rm -f "$TOP/.qemu.log"
    git -C "$tmp" init -q -b dcd
    git -C "$tmp" add -A -f .
    GIT_AUTHOR_NAME='Debian QEMU Team' \
    GIT_AUTHOR_EMAIL='pkg-qemu-devel@lists.alioth.debian.org' \
    GIT_AUTHOR_DATE="$BASE_DATE" GIT_COMMITTER_DATE="$BASE_DATE" \
        git -C "$tmp" commit -q --no-verify \
        -m "Debian qemu $QEMU_DEB_VERSION, as extracted by dpkg-source"
    git -C "$tmp" tag dcd-base
    mv "$tmp" "$WORKTREE"
}

apply_series()
{
    local p
    wgit reset -q --hard dcd-base
    while read -r p; do
        [ -f "$TOP/patches/$p" ] || die "patches/series lists missing $p"
        wgit am -q --keep-cr "$TOP/patches/$p" ||
            { wgit am --abort || true; die "patch $p does not apply"; }
    done < <(series_list)
    printf '%s %s\n' "$(patches_digest)" "$(wgit rev-parse HEAD)" > "$STATE"
}

# Link every added file into qemu/ and hide it from git there.
link_added()
{
    local f target rel
    : > "$LINKED.new"
    while read -r f; do
        target="$WORKTREE/$f"
        if [ -e "$target" ] && [ ! -L "$target" ]; then
            die "added file $f is also a file of the base; change it" \
                "through patches/ instead"
        fi
        mkdir -p "$(dirname "$target")"
        rel=$(realpath -s --relative-to="$(dirname "$target")" "$TOP/$f")
        [ "$(readlink "$target" 2>/dev/null)" = "$rel" ] ||
            ln -sfn "$rel" "$target"
        echo "$f" >> "$LINKED.new"
    done < <(added_files)
    # Drop the links of files that are no longer added files.
    if [ -f "$LINKED" ]; then
        comm -23 <(sort "$LINKED") <(sort "$LINKED.new") | while read -r f; do
            if [ -L "$WORKTREE/$f" ]; then
                rm -f "$WORKTREE/$f"
                rmdir -p --ignore-fail-on-non-empty "$(dirname "$WORKTREE/$f")"
            fi
        done
    fi
    mv "$LINKED.new" "$LINKED"
    {
        echo "# qemu-dcd: added files, linked from the qemu-dcd repo"
        sed 's|^|/|' "$LINKED"
    } > "$WORKTREE/.git/info/exclude"
}

# True when qemu/ has no commits or edits beyond what patches/ holds.
in_sync()
{
    local tmp rc=0
    [ -z "$(wgit status --porcelain --untracked-files=no)" ] || return 1
    tmp=$(mktemp -d)
    format_patches "$tmp"
    (cd "$tmp" && ls -1 *.patch 2>/dev/null) | diff -q - \
        <(series_list) >/dev/null || rc=1
    if [ $rc = 0 ]; then
        while read -r p; do
            cmp -s "$tmp/$p" "$TOP/patches/$p" || { rc=1; break; }
        done < <(series_list)
    fi
    rm -rf "$tmp"
    return $rc
}

cmd_prepare()
{
    local digest head
    [ -d "$WORKTREE/.git" ] || create_base
    digest=$(patches_digest)
    old_digest= old_head=
    [ ! -f "$STATE" ] || read -r old_digest old_head < "$STATE"
    head=$(wgit rev-parse HEAD)
    if [ ! -f "$STATE" ]; then
        note "applying patches/series to qemu/"
        apply_series
    elif [ "${old_digest:-}" = "$digest" ]; then
        : # patches/ unchanged since we applied it
    elif [ "${old_head:-}" = "$head" ] &&
         [ -z "$(wgit status --porcelain --untracked-files=no)" ]; then
        note "applying patches/series to qemu/"
        apply_series
    elif in_sync; then
        printf '%s %s\n' "$digest" "$head" > "$STATE"
    else
        die "qemu/ has commits or edits that patches/ does not hold, and" \
            "patches/ changed too: 'make export' keeps qemu/'s," \
            "'make reset-worktree' takes patches/'"
    fi
    link_added
}

cmd_export()
{
    local tmp p
    [ -d "$WORKTREE/.git" ] || die "no qemu/ work tree: run ./configure"
    [ -z "$(wgit status --porcelain --untracked-files=no)" ] ||
        die "qemu/ has uncommitted changes: commit them there first"
    tmp=$(mktemp -d)
    format_patches "$tmp"
    while read -r p; do
        [ -n "$p" ] && rm -f "$TOP/patches/$p"
    done < <(series_list)
    : > "$TOP/patches/series.new"
    for p in "$tmp"/*.patch; do
        [ -f "$p" ] || continue
        mv "$p" "$TOP/patches/"
        basename "$p" >> "$TOP/patches/series.new"
    done
    mv "$TOP/patches/series.new" "$TOP/patches/series"
    rm -rf "$tmp"
    printf '%s %s\n' "$(patches_digest)" "$(wgit rev-parse HEAD)" > "$STATE"
    echo "exported $(series_list | wc -l) patches to patches/"
}

cmd_reset()
{
    [ -d "$WORKTREE/.git" ] || die "no qemu/ work tree: run ./configure"
    apply_series
    link_added
    echo "qemu/ reset to dcd-base + patches/series"
}

cmd_status()
{
    if in_sync; then
        echo "qemu/ and patches/ agree"
    else
        echo "qemu/ differs from patches/: 'make export' to keep qemu/'s"
        return 1
    fi
}

case "${1:-}" in
prepare) cmd_prepare ;;
export) cmd_export ;;
reset) cmd_reset ;;
status) cmd_status ;;
*) die "usage: $0 prepare|export|reset|status" ;;
esac
