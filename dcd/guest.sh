#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the default guest of `make run`: Debian's kernel and an initramfs
# with busybox, the cxl and daxctl tools, the CXL and DAX modules and our
# guest programs (guest/), all from Debian packages of $GUEST_SUITE.
#
# The packages come through a private apt state in out/guest/apt (the
# machine's own apt configuration is not touched; the archive is the one
# the machine's apt sources name), are unpacked with dpkg-deb and the
# initramfs is written with cpio.  Nothing runs as another user, nothing
# is installed.  The result is rebuilt only when one of its inputs
# changes: a package version, a file under guest/, or this script.
#
# Output: out/guest/vmlinuz, out/guest/initramfs.cpio.gz,
#         out/guest/manifest (what they were built from)
#
# Environment:
#   GUEST_REFRESH=1   refresh the package index even if it is recent

set -euo pipefail
. "$(dirname "$0")/lib.sh"

GUEST_SUITE=trixie
# Root packages; the kernel is resolved through linux-image-amd64.
GUEST_PACKAGES=(
    busybox-static
    cxl daxctl
    libc6 libcxl1 libdaxctl1 libndctl6 libkmod2 libssl3t64 libjson-c5
    libuuid1 libudev1 libcap2 libtracefs1 libtraceevent1 libiniparser4
    libzstd1 liblzma5 zlib1g
)
# Modules loaded by /init, in this order (cxl_core, cxl_port and the dax
# core are built into Debian's kernel).
GUEST_MODULES=(
    drivers/cxl/cxl_acpi drivers/cxl/cxl_pci drivers/cxl/cxl_mem
    drivers/dax/device_dax drivers/dax/dax_cxl
)

G="$OUT/guest"
APTDIR="$G/apt"
DEBS="$G/debs"
mkdir -p "$APTDIR/etc/sources.list.d" "$APTDIR/etc/preferences.d" \
         "$APTDIR/etc/apt.conf.d" "$APTDIR/lists/partial" \
         "$APTDIR/cache/archives/partial" "$DEBS"
touch "$APTDIR/status"

APT_OPTS=(
    -o "Dir::Etc=$APTDIR/etc"
    -o "Dir::Etc::sourcelist=$APTDIR/etc/sources.list"
    -o "Dir::State=$APTDIR"
    -o "Dir::State::lists=$APTDIR/lists"
    -o "Dir::State::status=$APTDIR/status"
    -o "Dir::Cache=$APTDIR/cache"
    -o "APT::Architecture=amd64"
    -o "APT::Architectures::=amd64"
    -o "Debug::NoLocking=1"
    -o "APT::Sandbox::User=root"
)

refresh_index()
{
    local uri stamp="$APTDIR/lists/.updated"

    uri=$(archive_uri | head -n 1)
    [ -n "$uri" ] ||
        die "no Debian bookworm entry in /etc/apt/sources*, so no archive to use"
    cat > "$APTDIR/etc/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $GUEST_SUITE main
EOF
    if [ -z "${GUEST_REFRESH:-}" ] && [ -f "$stamp" ] &&
       [ -n "$(find "$stamp" -mmin -1440)" ] &&
       cmp -s "$APTDIR/etc/sources.list" "$APTDIR/lists/.sources"; then
        return
    fi
    note "guest: updating the $GUEST_SUITE package index"
    apt-get "${APT_OPTS[@]}" -qq update > "$G/apt.log" 2>&1 ||
        { tail -5 "$G/apt.log" >&2; die "apt-get update for the guest failed"; }
    cp "$APTDIR/etc/sources.list" "$APTDIR/lists/.sources"
    touch "$stamp"
}

# Print "package version" for the kernel and every root package.
resolve_versions()
{
    local kernel p v

    kernel=$(apt-cache "${APT_OPTS[@]}" depends linux-image-amd64 2>/dev/null |
             awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    [ -n "$kernel" ] || die "no kernel found for linux-image-amd64 in $GUEST_SUITE"
    for p in "$kernel" "${GUEST_PACKAGES[@]}"; do
        v=$(apt-cache "${APT_OPTS[@]}" policy "$p" 2>/dev/null |
            awk '/Candidate:/ { print $2 }')
        [ -n "$v" ] && [ "$v" != "(none)" ] ||
            die "package $p is not in $GUEST_SUITE"
        echo "$p $v"
    done
}

# The .deb file name apt-get download writes for "package version".
deb_name()
{
    local v="${2//:/%3a}"
    echo "${1}_${v}_amd64.deb"
}

inputs_hash()
{
    {
        cat "$G/versions"
        printf '%s\n' "${GUEST_MODULES[@]}"
        cat "$TOP/dcd/guest.sh"
        (cd "$TOP" && find guest -type f -print0 | sort -z |
             xargs -0 sha256sum)
    } | sha256sum | cut -d' ' -f1
}

refresh_index
resolve_versions > "$G/versions.new"
mv "$G/versions.new" "$G/versions"
hash=$(inputs_hash)
if [ -f "$G/initramfs.cpio.gz" ] && [ -f "$G/vmlinuz" ] &&
   [ "$(cat "$G/.inputs" 2>/dev/null)" = "$hash" ]; then
    exit 0
fi

note "guest: building the guest image in out/guest/"
need=()
while read -r p v; do
    [ -f "$DEBS/$(deb_name "$p" "$v")" ] || need+=("$p=$v")
done < "$G/versions"
if [ ${#need[@]} -gt 0 ]; then
    (cd "$DEBS" && apt-get "${APT_OPTS[@]}" -qq download "${need[@]}") \
        > "$G/apt.log" 2>&1 ||
        { tail -5 "$G/apt.log" >&2; die "downloading the guest packages failed"; }
fi

# Unpack every package into a scratch tree.
pkgs="$G/pkgs"
rm -rf "$pkgs"
mkdir -p "$pkgs"
while read -r p v; do
    dpkg-deb -x "$DEBS/$(deb_name "$p" "$v")" "$pkgs"
done < "$G/versions"

kver=$(cd "$pkgs/usr/lib/modules" && ls)
[ "$(echo "$kver" | wc -l)" = 1 ] || die "expected one kernel, found: $kver"

# The initramfs tree: merged /usr like Debian, busybox for everything
# that is not a CXL tool.
root="$G/root"
rm -rf "$root"
mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib64,usr/lib/x86_64-linux-gnu} \
         "$root"/{dev,proc,sys,tmp,run,root,etc,mnt}
ln -s usr/bin "$root/bin"
ln -s usr/sbin "$root/sbin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
cp "$pkgs/usr/bin/busybox" "$root/usr/bin/busybox"
for tool in cxl daxctl; do
    cp "$pkgs/usr/bin/$tool" "$root/usr/bin/$tool"
done
# Shared libraries, without the locale and gconv data glibc ships.
cp -a "$pkgs"/usr/lib/x86_64-linux-gnu/*.so* "$root/usr/lib/x86_64-linux-gnu/"
cp -a "$pkgs"/usr/lib64/ld-linux-x86-64.so.2 "$root/usr/lib64/"
# Every library the tools need must be there: the packages list is short
# on purpose, so say which one is missing instead of failing in the guest.
for bin in "$root"/usr/bin/cxl "$root"/usr/bin/daxctl \
           "$root"/usr/lib/x86_64-linux-gnu/*.so*; do
    [ -L "$bin" ] && continue
    for lib in $(readelf -d "$bin" 2>/dev/null |
                 sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
        [ -e "$root/usr/lib/x86_64-linux-gnu/$lib" ] ||
        [ -e "$root/usr/lib64/$lib" ] ||
            die "guest: ${bin#"$root"/} needs $lib, which no guest package provides"
    done
done

# Modules, decompressed so that busybox modprobe loads them as they are
# (their modules.dep lists no dependencies: they have none).
mdir="$root/usr/lib/modules/$kver"
mkdir -p "$mdir"
: > "$root/etc/modules"
: > "$mdir/modules.dep"
for m in "${GUEST_MODULES[@]}"; do
    src="$pkgs/usr/lib/modules/$kver/kernel/$m.ko.xz"
    [ -f "$src" ] || die "guest: module $m is not in the $kver package"
    xz -dc "$src" > "$mdir/$(basename "$m").ko"
    echo "$(basename "$m").ko:" >> "$mdir/modules.dep"
    echo "$(basename "$m")" >> "$root/etc/modules"
done
cp "$pkgs/usr/lib/modules/$kver/modules.builtin" "$mdir/"

# Our programs: the init script, the static host agent, the tools.
install -m 0755 "$TOP/guest/init" "$root/init"
for f in "$TOP"/guest/bin/*; do
    [ -f "$f" ] && install -m 0755 "$f" "$root/usr/bin/"
done
if [ -d "$TOP/guest/agent" ]; then
    mkdir -p "$G/agent"
    make -s -C "$TOP/guest/agent" O="$G/agent" >/dev/null ||
        die "building the host agent (guest/agent) failed"
    install -m 0755 "$G/agent/dcd-agent" "$root/usr/bin/dcd-agent"
fi
cp "$G/versions" "$root/etc/guest-packages"

cp "$pkgs/boot/vmlinuz-$kver" "$G/vmlinuz.new"
(cd "$root" && find . -print0 | LC_ALL=C sort -z |
     cpio --null --quiet -o -H newc --owner=0:0 --reproducible) |
    gzip -1 -n > "$G/initramfs.cpio.gz.new"
mv "$G/vmlinuz.new" "$G/vmlinuz"
mv "$G/initramfs.cpio.gz.new" "$G/initramfs.cpio.gz"
{
    echo "kernel $kver"
    cat "$G/versions"
} > "$G/manifest"
echo "$hash" > "$G/.inputs"
rm -rf "$pkgs"
note "guest: $(du -h "$G/initramfs.cpio.gz" | cut -f1) initramfs, kernel $kver"
