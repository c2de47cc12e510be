#!/usr/bin/env bash
# Builds the safetensors header fuzzer with clang (libFuzzer + AddressSanitizer) against the
# torch-free parser alone and runs it. Usage: scripts/fuzz.sh [seconds, default 60] [libFuzzer args...]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
secs=${1:-60}
shift || true
out=${BBT_FUZZ_DIR:-$here/build/fuzz}
mkdir -p "$out/corpus"
cp -n "$here"/tests/fuzz/corpus/* "$out/corpus/" 2>/dev/null || true
clang++ -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -I"$here/include" \
  "$here/tests/fuzz/safetensors_fuzz.cpp" "$here/src/model/safetensors_header.cpp" \
  -o "$out/safetensors_fuzz"
"$out/safetensors_fuzz" -max_total_time="$secs" -max_len=4096 "$@" "$out/corpus"
