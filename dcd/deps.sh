#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Check, and with "install" install, the Debian packages qemu-dcd needs.
# Adds the apt suites it needs (a deb-src entry for the suite serving the
# pinned QEMU source, and bookworm-backports for meson >= 1.5), taking the
# archive address from the machine's own apt sources.

set -euo pipefail
. "$(dirname "$0")/lib.sh"

# Build and test dependencies, from the Debian 12 archive.
PACKAGES=(
    build-essential git ninja-build pkgconf ccache dpkg-dev
    python3 python3-venv flex bison perl
    libglib2.0-dev zlib1g-dev libfdt-dev libpixman-1-dev
    gcc-multilib seabios ipxe-qemu socat
    # the guest image (dcd/guest.sh)
    cpio xz-utils
    # make check: the engine's libFuzzer targets
    clang libclang-rt-14-dev
    # make bench: its plot and its instruction counts
    gnuplot-nox valgrind
)
MESON_MIN=1.5.0
SOURCES_FILE=/etc/apt/sources.list.d/qemu-dcd.sources

missing_packages()
{
    local p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${db:Status-Status}\n' "$p" 2>/dev/null |
            grep -qx installed || echo "$p"
    done
}

meson_ok()
{
    local v
    v=$(meson --version 2>/dev/null) || return 1
    dpkg --compare-versions "$v" ge "$MESON_MIN"
}

sources_ok()
{
    [ -f "$SOURCES_FILE" ] &&
        apt-cache showsrc qemu 2>/dev/null |
        grep -qxF "Version: $QEMU_DEB_VERSION"
}

missing=$(missing_packages)
if [ -z "$missing" ] && meson_ok && sources_ok; then
    exit 0
fi
if [ "${1:-}" != install ]; then
    die "missing Debian packages or apt sources:" \
        "${missing//$'\n'/ }; run ./configure without --no-deps"
fi

SUDO=
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "installing packages needs root or sudo"
    SUDO=sudo
fi

uri=$(archive_uri | head -n 1)
[ -n "$uri" ] ||
    die "no Debian bookworm entry in /etc/apt/sources*, so no archive to use"
echo "adding apt suites $QEMU_SRC_SUITE (deb-src) and bookworm-backports"
$SUDO tee "$SOURCES_FILE" >/dev/null <<EOF
# Written by qemu-dcd's configure.
Types: deb-src
URIs: $uri
Suites: $QEMU_SRC_SUITE
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
echo "updating apt indexes"
$SUDO apt-get update -qq
echo "installing: ${missing//$'\n'/ } meson"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    "${PACKAGES[@]}" meson/bookworm-backports > /tmp/qemu-dcd-apt.log 2>&1 ||
    { tail -20 /tmp/qemu-dcd-apt.log >&2; die "apt-get install failed"; }
meson_ok || die "meson >= $MESON_MIN is not installed after apt-get install"
