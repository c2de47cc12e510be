#!/usr/bin/env bash
# Configures and builds bbt into build/ (Release, Ninja). Extra arguments go to cmake.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BBT_BUILD_DIR:-$here/build}
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -- -j"$(nproc)"
