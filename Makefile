# SPDX-License-Identifier: GPL-2.0-or-later
#
# qemu-dcd: build, test and run QEMU with the DCD series applied.
# Run ./configure first; it prepares qemu/ and build/.

SHELL := /bin/bash
export PATH := /usr/lib/ccache:$(PATH)
# Hash paths relative to the build directory, so that clones in other
# folders and the build of the posted series share ccache's objects.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

QEMU := build/qemu-system-x86_64
NINJA_TARGETS := qemu-system-x86_64 $(shell cat dcd/test-binaries 2>/dev/null)

.PHONY: all build check run guest series export reset-worktree worktree-status \
        unit bench clean distclean help

all: build

build: build/build.ninja
	@./dcd/worktree.sh prepare
	@ninja -C build $(NINJA_TARGETS)
	@$(MAKE) -s -C build/pc-bios/optionrom

build/build.ninja:
	@echo "error: build/ is not configured: run ./configure first" >&2
	@exit 1

check: build
	@./dcd/check.sh

run: build
	@./dcd/run.sh

# The default guest: Debian's kernel and an initramfs with our programs
guest:
	@./dcd/guest.sh

# The engine and its unit tests alone, from the top-level meson.build
unit: build/build.ninja
	@ninja -C build libqemuutil.a >/dev/null
	@[ -f out/engine/build.ninja ] || meson setup out/engine >/dev/null
	@meson test -C out/engine --print-errorlogs

# This build against the pristine base (built in out/bench/), side by side
bench: build
	@./dcd/bench.sh

series:
	@./dcd/series.sh out/series

export:
	@./dcd/worktree.sh export

reset-worktree:
	@./dcd/worktree.sh reset

worktree-status:
	@./dcd/worktree.sh status

clean:
	@[ ! -f build/build.ninja ] || ninja -C build clean

distclean:
	rm -rf build out qemu .qemu.tmp

help:
	@echo "make               build $(QEMU) and the test binaries"
	@echo "make check         run every test; ends with 'N passed, N failed'"
	@echo "make run           boot the default guest on the DCD machine, with a QMP socket"
	@echo "                   (GUEST=none, KERNEL=, INITRD=, MODULES=, APPEND=)"
	@echo "make guest         build the default guest image in out/guest/"
	@echo "make unit          build and run the engine's unit tests alone"
	@echo "make bench         benchmark this build against the pristine base"
	@echo "make series        write the whole series to out/series/"
	@echo "make export        write qemu/'s commits back to patches/"
	@echo "make reset-worktree  reset qemu/ to the base plus patches/"
	@echo "make worktree-status say whether qemu/ and patches/ agree"
