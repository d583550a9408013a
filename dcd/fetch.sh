#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Fetch the pinned Debian source package of QEMU into downloads/ with
# apt-get source and verify the .dsc against our pin and every file
# against the .dsc.  Nothing is downloaded when the files are there and
# verify.

set -euo pipefail
. "$(dirname "$0")/lib.sh"

# Verify $DOWNLOADS/$QEMU_DSC and the files it lists; print nothing and
# return 0 when all match.
verify()
{
    local dsc="$DOWNLOADS/$QEMU_DSC" sum size name
    [ -f "$dsc" ] || return 1
    echo "$QEMU_DSC_SHA256  $dsc" | sha256sum --quiet -c - 2>/dev/null ||
        return 1
    sed -n '/^Checksums-Sha256:/,/^[^ ]/{/^ /p}' "$dsc" |
        while read -r sum size name; do
            [ -f "$DOWNLOADS/$name" ] || return 1
            [ "$(stat -c %s "$DOWNLOADS/$name")" = "$size" ] || return 1
            echo "$sum  $DOWNLOADS/$name" | sha256sum --quiet -c - \
                >/dev/null 2>&1 || return 1
        done
}

if verify; then
    exit 0
fi

mkdir -p "$DOWNLOADS"
echo "fetching Debian source package qemu $QEMU_DEB_VERSION"
if ! (cd "$DOWNLOADS" &&
      apt-get source -qq --download-only "qemu=$QEMU_DEB_VERSION") \
      > "$DOWNLOADS/fetch.log" 2>&1; then
    die "the Debian archive does not serve source package qemu" \
        "$QEMU_DEB_VERSION (apt-get source failed, see downloads/fetch.log)"
fi
verify || die "downloaded qemu $QEMU_DEB_VERSION does not match its" \
              "pinned checksums (.dsc sha256 $QEMU_DSC_SHA256)"
