#!/usr/bin/env bash
# Configures and builds refstream into build/ (or $RS_BUILD_DIR). Extra
# arguments go to CMake's configure step, e.g. -DRS_SANITIZE=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${RS_BUILD_DIR:-build}
cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
cmake --build "$dir" -- -j"$(nproc)"
