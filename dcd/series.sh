#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Write the whole series, added files included, as numbered patches that
# apply to the pristine base with git am: the form in which it would be
# posted upstream.  patches/added-files says which patch adds each file.
#
# Usage: dcd/series.sh OUTDIR

set -euo pipefail
. "$(dirname "$0")/lib.sh"

out=$(realpath -m "${1:?usage: $0 OUTDIR}")
manifest="$TOP/patches/added-files"
tree="$OUT/.series-tree"

[ -d "$WORKTREE/.git" ] || die "no qemu/ work tree: run ./configure"

# slug of a patch file: its name without the number and .patch
slug()
{
    basename "$1" .patch | sed 's/^[0-9]\{4\}-//'
}

# Every added file must be in the manifest, and only those.
manifest_files()
{
    sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$manifest" | awk '{ print $1 }'
}
diff <(manifest_files | sort) <(added_files) >/dev/null || {
    diff <(manifest_files | sort) <(added_files) >&2 || true
    die "patches/added-files does not list exactly the added files" \
        "(< only in the manifest, > only in the repo)"
}

rm -rf "$tree"
git -C "$WORKTREE" worktree prune
git -C "$WORKTREE" worktree add -q --detach "$tree" dcd-base
trap 'git -C "$WORKTREE" worktree remove --force "$tree" 2>/dev/null || true' EXIT

used=0
while read -r p; do
    s=$(slug "$p")
    git -C "$tree" am -q --keep-cr "$TOP/patches/$p" ||
        die "patch $p does not apply to the base"
    files=$(sed -e 's/#.*//' "$manifest" | awk -v s="$s" '$2 == s { print $1 }')
    if [ -n "$files" ]; then
        for f in $files; do
            mkdir -p "$tree/$(dirname "$f")"
            cp "$TOP/$f" "$tree/$f"
            git -C "$tree" add -f "$f"
            used=$((used + 1))
        done
        git -C "$tree" commit -q --amend --no-edit --no-verify
    fi
done < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$TOP/patches/series")

[ "$used" = "$(manifest_files | wc -l)" ] ||
    die "patches/added-files names a patch that patches/series does not list"

rm -rf "$out"
mkdir -p "$out"
git -C "$tree" -c format.signature= format-patch -q --zero-commit \
    --no-signature --full-index --no-renames -o "$out" dcd-base..HEAD
sed -i '/^Date: /d' "$out"/*.patch
echo "wrote $(ls "$out" | wc -l) patches to ${out#$TOP/}"
