#!/usr/bin/env bash
# `bbt bench forward` prints the promised JSON (throughput, FLOP rates, MFU, the BLAS in use), and
# warns when OpenBLAS runs generic kernels on a CPU that has better ones.
set -euo pipefail
tmp=${BBT_SCRATCH:-$(mktemp -d)}
rm -rf "$tmp"; mkdir -p "$tmp"
run() { "$BBT" bench forward --shape tiny --candidates 2 --examples 4 --repeats 1 --threads 1 "$@"; }
run >"$tmp/out.json" 2>"$tmp/err.log" || { cat "$tmp/err.log"; exit 1; }
"$PYTHON" - "$tmp/out.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for key in ("calls_per_second", "tokens_per_second", "gflops", "matmul_gflops", "mfu"):
    assert r[key] > 0, (key, r)
assert abs(r["mfu"] - r["gflops"] / r["matmul_gflops"]) < 1e-9 * r["mfu"], r
assert r["blas"] in ("OpenBLAS", "unknown"), r
assert (r["blas_core"] != "") == (r["blas"] == "OpenBLAS"), r
# Peak memory of the process (libtorch alone is tens of megabytes), none on a device for CPU.
assert 2e7 < r["peak_rss_bytes"] < 2e10 and r["peak_device_bytes"] == 0, r
PY
blas=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["blas"])' "$tmp/out.json")
if [[ $blas == OpenBLAS ]] && grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
  # OpenBLAS's generic kernels, forced: reported, and the warning names the variable to set.
  OPENBLAS_CORETYPE=Prescott run >"$tmp/slow.json" 2>"$tmp/slow.log" || { cat "$tmp/slow.log"; exit 1; }
  "$PYTHON" -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r["blas_core"] == "Prescott", r' "$tmp/slow.json"
  grep -q '^bbt: warning: OpenBLAS runs its generic Prescott kernels .*OPENBLAS_CORETYPE=\(SkylakeX\|Haswell\)' \
    "$tmp/slow.log" || { echo "no warning for Prescott kernels:"; cat "$tmp/slow.log"; exit 1; }
  core=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["blas_core"])' "$tmp/out.json")
  if [[ $core != Prescott && $core != Core2 && $core != Nehalem ]] && grep -q "bbt: warning" "$tmp/err.log"; then
    echo "warning with OpenBLAS's $core kernels:"; cat "$tmp/err.log"; exit 1
  fi
fi
set +e
"$BBT" bench forward --shape huge 2>/dev/null; rc=$?
[ "$rc" -eq 2 ] || { echo "unknown shape: exit $rc, expected 2"; exit 1; }
echo ok
