#!/usr/bin/env bash
# `bbt bench cma`, `cma-functions` and `eigen` print the promised JSON; bad usage exits 2.
set -euo pipefail
out=$("$BBT" bench cma --dim 20 --popsize 8 --generations 10 --covariance diagonal)
echo "$out" | "$PYTHON" -c '
import json, sys
r = json.load(sys.stdin)
assert r["dim"] == 20 and r["popsize"] == 8 and r["generations"] == 10 and r["covariance"] == "diagonal", r
assert r["seconds_total"] > 0 and r["seconds_per_generation_median"] > 0, r'
out=$("$BBT" bench cma-functions --dims 4 --seeds 2 --functions sphere)
echo "$out" | "$PYTHON" -c '
import json, sys
rows = json.load(sys.stdin)
assert [(r["function"], r["dim"]) for r in rows] == [("sphere", 4)], rows
assert rows[0]["success_rate"] == 1.0 and rows[0]["median_evals"] > 0, rows'
# Full covariance at dim 150 (eigen gap > 1, background decompositions): every kernel set this CPU
# runs and both thread counts end on the same best f (the tests in es_test check the bits).
best=""
for kernels in generic avx2 avx512; do
  for threads in 1 2; do
    out=$("$BBT" bench cma --dim 150 --popsize 10 --generations 40 --kernels "$kernels" --threads "$threads" 2>/dev/null) ||
      continue  # a kernel set this CPU cannot run
    f=$(echo "$out" | "$PYTHON" -c 'import json, sys; r = json.load(sys.stdin); print(repr(r["best_f"]), r["kernels"], r["threads"])')
    read -r value name used <<<"$f"
    [[ $name == "$kernels" && $used == "$threads" ]] || { echo "asked $kernels/$threads, ran $name/$used"; exit 1; }
    [[ -z $best || $value == "$best" ]] || { echo "best_f $value with $kernels/$threads, $best before"; exit 1; }
    best=$value
  done
done
out=$("$BBT" bench eigen --dim 200 --generations 5 --repeats 2)
echo "$out" | "$PYTHON" -c '
import json, sys
r = json.load(sys.stdin)
assert r["dim"] == 200 and r["same_bits_1_and_2_threads"] is True, r
assert r["residual_relative"] < 1e-13 and r["orthogonality"] < 1e-12, r
assert r["max_eigenvalue_difference_vs_eigen"] < 1e-12, r
assert min(r["seconds_eigen_median"], r["seconds_bbt_1_thread_median"], r["seconds_bbt_2_threads_median"]) > 0, r'
set +e
"$BBT" bench cma --kernels sse9 2>/dev/null; rc=$?
[ "$rc" -eq 2 ] || { echo "unknown kernel set: exit $rc, expected 2"; exit 1; }
"$BBT" bench cma --threads -1 2>/dev/null; rc=$?
[ "$rc" -eq 2 ] || { echo "negative threads: exit $rc, expected 2"; exit 1; }
"$BBT" bench no-such-bench 2>/dev/null; rc=$?
[ "$rc" -eq 2 ] || { echo "unknown bench: exit $rc, expected 2"; exit 1; }
"$BBT" bench cma --covariance banana 2>/dev/null; rc=$?
[ "$rc" -eq 2 ] || { echo "bad covariance: exit $rc, expected 2"; exit 1; }
echo ok
