#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install dependencies, build, run a first job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
echo
build/glimpse --version
