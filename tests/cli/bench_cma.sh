#!/usr/bin/env bash
# `bbt bench cma` and `bbt bench cma-functions` print the promised JSON; bad usage exits 2.
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
set +e
"$BBT" bench no-such-bench 2>/dev/null; rc=$?
[ "$rc" -eq 2 ] || { echo "unknown bench: exit $rc, expected 2"; exit 1; }
"$BBT" bench cma --covariance banana 2>/dev/null; rc=$?
[ "$rc" -eq 2 ] || { echo "bad covariance: exit $rc, expected 2"; exit 1; }
echo ok
