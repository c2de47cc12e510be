#!/usr/bin/env bash
# kernel_set.sh SET COMMAND...: runs COMMAND with OpenBLAS forced to kernel set SET (Prescott,
# Haswell or SkylakeX), or exits 77 (CTest: skipped) when this CPU cannot run that set. Used to run
# the bit-identity tests once per kernel set the CPU supports: OpenBLAS rounds differently in each.
set -u
set_name=$1
shift
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
has() { for f in "$@"; do [[ " $flags " == *" $f "* ]] || return 1; done; }
case $set_name in
  Prescott) need=(pni) ;;  # SSE3 (/proc/cpuinfo calls it pni)
  Haswell) need=(avx2 fma) ;;
  SkylakeX) need=(avx512f avx512bw avx512dq avx512vl) ;;
  *) echo "kernel_set.sh: unknown kernel set '$set_name'" >&2; exit 2 ;;
esac
if [[ $(uname -m) != x86_64 ]] || ! has "${need[@]}"; then
  echo "skipped: this CPU cannot run OpenBLAS's $set_name kernels (needs ${need[*]})"
  exit 77
fi
export OPENBLAS_CORETYPE=$set_name
exec "$@"
