#!/usr/bin/env bash
# Installs what glimpse needs to build and test on Debian 12 (idempotent; skips apt when present).
# Usage: tools/deps.sh [--dev]   (--dev adds PyTorch/Pillow for the reference scripts in tools/)
set -euo pipefail
pkgs=(build-essential cmake pkg-config zlib1g-dev libjpeg62-turbo-dev libpng-dev libwebp-dev
      libcjson-dev libsqlite3-dev clang lld libclang-rt-14-dev
      gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
if [ "${1:-}" = "--dev" ]; then pkgs+=(python3-torch python3-pil python3-numpy python3-regex); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
