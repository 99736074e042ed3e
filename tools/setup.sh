#!/usr/bin/env bash
# Installs everything this repository needs on a fresh Debian machine with Node 20, then builds it.
# Idempotent: run it again after pulling.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real NBD clients for the capture device's tests and the demo (Debian packages); nbdfuse (in
# libnbd-bin) and mkfs.ext4 let the demo put a file system on the device.
need=()
command -v qemu-io >/dev/null 2>&1 || need+=(qemu-utils)
command -v nbdinfo >/dev/null 2>&1 || need+=(libnbd-bin)
command -v fio >/dev/null 2>&1 || need+=(fio)
command -v nbdkit >/dev/null 2>&1 || need+=(nbdkit)
command -v mkfs.ext4 >/dev/null 2>&1 || [ -x /sbin/mkfs.ext4 ] || need+=(e2fsprogs)
# strace: a test checks that the CLI's outputs reach the disk (fdatasync) before it reports success.
command -v strace >/dev/null 2>&1 || need+=(strace)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null
  else
    echo "setup: install ${need[*]} (Debian packages) for the capture device's tests" >&2
  fi
fi

PNPM_VERSION=10.34.9
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  npm install -g "pnpm@$PNPM_VERSION"
fi

# The native addon is built with cargo (std only, no crates to download).
if [ -d "$HOME/.cargo/bin" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo (Rust) is needed to build the native addon of @walbjs/native-walb; install rustup's stable toolchain" >&2
  exit 1
fi

export CI="${CI:-true}"
pnpm install --frozen-lockfile --reporter=append-only
pnpm --reporter=append-only build
