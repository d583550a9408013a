# SPDX-License-Identifier: GPL-2.0-or-later
# Settings and helpers shared by configure and the dcd/ scripts.
# Sourced, never run.

# The pinned base: Debian's source package of QEMU.  The .dsc hash pins
# the exact upload; the .dsc in turn pins its tarballs.
QEMU_DEB_VERSION='1:10.2.2+ds-1'
QEMU_DSC='qemu_10.2.2+ds-1.dsc'
QEMU_DSC_SHA256='f1684b3aa5ec500c3389d346c6501dee45041ea91656c6556d4da9023b7987dd'
# Debian suite whose source index serves that version.
QEMU_SRC_SUITE='unstable'

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DOWNLOADS="$TOP/downloads"
WORKTREE="$TOP/qemu"
BUILD="$TOP/build"
OUT="$TOP/out"

# Top-level directories whose files the series adds to QEMU.
ADDED_DIRS='hw include qapi tests docs'

# QEMU's configure for our build: one x86_64 system target, TCG and qtest,
# nothing optional that the CXL devices do not need.
QEMU_CONFIGURE_ARGS=(
    --python=/usr/bin/python3
    --target-list=x86_64-softmmu
    --without-default-features
    --enable-tcg
    --enable-fdt=system
    --disable-docs
    --disable-install-blobs
)

# Deterministic identity and dates for the commits the scripts make, so
# the base commit and the exported patches do not churn.
export GIT_COMMITTER_NAME='qemu-dcd scripts'
export GIT_COMMITTER_EMAIL='scripts@qemu-dcd.invalid'
BASE_DATE='2025-01-01T00:00:00+0000'

die()
{
    echo "error: $*" >&2
    exit 1
}

note()
{
    [ -n "${DCD_QUIET:-}" ] || echo "$*"
}

# List the files the series adds, relative to $TOP, sorted.
added_files()
{
    (cd "$TOP" && git ls-files -co --exclude-standard -- $ADDED_DIRS | sort)
}

# Prefer ccache's compiler links when ccache is installed.
if [ -d /usr/lib/ccache ]; then
    case ":$PATH:" in
        *:/usr/lib/ccache:*) ;;
        *) export PATH="/usr/lib/ccache:$PATH" ;;
    esac
fi

# Let the build of the posted series (out/series-check/) reuse the main
# build's objects: hash paths relative to the build directory.
export CCACHE_BASEDIR="$TOP"
export CCACHE_NOHASHDIR=1

# The source package has no firmware blobs.  A QEMU run from a build
# directory looks for them in its qemu-bundle data directory: link there
# Debian's SeaBIOS and iPXE ROMs and the option ROMs that make builds
# from the base source (in build/), so that tests and users need no -L.
link_firmware()
{
    local datadir="$1/qemu-bundle/usr/local/share/qemu" f
    mkdir -p "$datadir"
    for f in /usr/share/seabios/*.bin /usr/lib/ipxe/qemu/*.rom \
             "$BUILD"/pc-bios/optionrom/{linuxboot,linuxboot_dma,kvmvapic}.bin \
             "$BUILD"/pc-bios/optionrom/{multiboot,multiboot_dma,pvh}.bin; do
        [ -L "$datadir/$(basename "$f")" ] || ln -sf "$f" "$datadir/"
    done
}

# Print the URI of the main Debian archive the machine already uses.
archive_uri()
{
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        [ "$f" = /etc/apt/sources.list.d/qemu-dcd.sources ] && continue
        # deb822: a stanza with a plain bookworm suite and its URIs.
        awk '
            /^$/ { if (uri != "" && suite) { print uri; exit }
                   uri = ""; suite = 0; next }
            /^URIs:/ { uri = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++)
                             if ($i == "bookworm") suite = 1 }
            END { if (uri != "" && suite) print uri }
        ' "$f"
    done | head -n 1
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' "$f"
    done | head -n 1
}
