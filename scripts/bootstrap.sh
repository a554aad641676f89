#!/usr/bin/env bash
# Installs what hybridmem needs on a fresh Debian 12 machine, and nothing when
# it is all there already (about a second: one dpkg-query and one stat).
#   - Debian packages: QEMU, Debian's 6.1 and 6.12 kernels with their headers
#     (the VM runner boots them, the module is built against them), busybox
#     (the guest's initramfs), kmod, the compilers, the decompressors; for
#     the checkout also python3 and cmake (node-gyp, cmake-js) and the aarch64
#     cross compiler (the linux-arm64 prebuilt addon, scripts/prebuild.mjs).
#     An installed package gets the same list minus those three from
#     `hybridmem bootstrap` (src/setup/bootstrap.ts).
#     Also Debian's archive keyring and mmdebstrap: hybridmem kernels --fetch
#     checks the archive with the first; the second makes the chroot a
#     fetched kernel's module is built in when the host's compiler cannot.
#     qemu-system-arm boots arm64 guests (hybridmem vm --arch arm64); their
#     root and the module's cross compiler come from Debian's archive on first
#     use (mmdebstrap), not from this machine's packages.
#   - npm ci, when node_modules is missing or older than package-lock.json
#     (never through a node_modules symlink: it would empty the target).
# Usage: scripts/bootstrap.sh [--no-npm]
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
	qemu-system-x86 qemu-system-arm
	linux-image-amd64 linux-headers-amd64
	linux-image-6.12-amd64 linux-headers-6.12-amd64
	busybox-static cpio kmod build-essential python3 cmake
	xz-utils zstd
	g++-aarch64-linux-gnu
	debian-archive-keyring mmdebstrap
)

log() { printf 'bootstrap: %s\n' "$*" >&2; }

missing=()
for pkg in "${PACKAGES[@]}"; do
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" = installed ] || missing+=("$pkg")
done

if [ "${#missing[@]}" -gt 0 ]; then
	sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null; then sudo=(sudo); else
			log "missing packages: ${missing[*]}"
			log "run as root: apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
			exit 1
		fi
	fi
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# The VM runner brings its own initramfs: skip Debian's, which costs
	# tens of seconds per kernel.
	export INITRD=No
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" env INITRD=No DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	log "packages installed"
fi

if [ "${1:-}" != "--no-npm" ]; then
	stamp=node_modules/.hybridmem-lock
	lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
	if [ -L node_modules ]; then
		# A worktree sharing another checkout's modules: npm ci would empty
		# that checkout's node_modules, not make one of our own.
		log "node_modules is a symlink (to $(readlink node_modules)): not running npm ci"
	elif [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
		log "npm ci"
		npm ci --no-audit --no-fund --loglevel=error
		echo "$lock_sum" > "$stamp"
	fi
fi
