#!/usr/bin/env bash
# README command (2): install what is needed, build, and run the whole test suite with CTest.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$here/scripts/setup.sh"
bash "$here/scripts/build.sh"
cd "${BBT_BUILD_DIR:-$here/build}"
ctest --output-on-failure --timeout 900 "$@"
