#!/usr/bin/env bash
# `bbt bench train` prints the promised JSON for one model-tuning step (forward + backward + AdamW):
# steps/s, FLOPs per step (3 x the forward's matmul FLOPs), the matmul rate and MFU; timing is not
# checked (speed claims come from running it: README 'Measured performance'). Bad options: exit 2.
set -euo pipefail
tmp=${BBT_SCRATCH:-$(mktemp -d)}
rm -rf "$tmp"; mkdir -p "$tmp"
"$BBT" bench train --shape tiny --optim.batch_size 4 --seq-len 16 --optim.chunk_rows 2 --repeats 2 --threads 1 \
  >"$tmp/out.json" 2>"$tmp/err.log" || { cat "$tmp/err.log"; exit 1; }
"$PYTHON" - "$tmp/out.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["bench"] == "train" and r["layers"] == 2 and r["hidden"] == 64, r
assert r["batch_size"] == 4 and r["seq_len"] == 16 and r["chunk_rows"] == 2 and r["tokens_per_step"] == 64, r
assert len(r["seconds_per_step"]) == 2 and r["flops_rule"] == "3 x forward matmul FLOPs", r
for key in ("steps_per_second", "tokens_per_second", "gflops", "matmul_gflops", "mfu", "gflop_per_step", "loss"):
    assert r[key] > 0, (key, r)
assert abs(r["mfu"] - r["gflops"] / r["matmul_gflops"]) < 1e-9 * r["mfu"], r
assert abs(r["gflops"] - r["gflop_per_step"] / r["seconds_per_step_median"]) < 1e-9 * r["gflops"], r
# FLOPs: 3 x the forward's matmuls, row by row (bench forward's count: the last layer at <mask>).
t, H, F, K, L = 16.0, 64.0, 128.0, 2.0, 2
full = 2*t*H*3*H + 2*t*t*H*2 + 2*t*H*H + 2*t*H*F*2
last = 2*t*H*2*H + 2*H*H + 2*t*H*2 + 2*H*H + 2*H*F*2
want = 3 * 4 * ((L - 1) * full + last + 2*H*H + 2*H*K)
assert abs(r["gflop_per_step"] * 1e9 - want) < 1e-6 * want, (r["gflop_per_step"], want)
# Every weight trained: the tiny shape's embeddings (GPT-2 vocabulary) alone are 50265 x 64.
assert r["trainable_parameters"] > 50265 * 64, r
assert 2e7 < r["peak_rss_bytes"] < 2e10, r
PY
set +e
"$BBT" bench train --shape huge 2>/dev/null; rc=$?
[ "$rc" -eq 2 ] || { echo "unknown shape: exit $rc, expected 2"; exit 1; }
"$BBT" bench train --shape tiny --seq-len 2 2>"$tmp/bad.err"; rc=$?
[ "$rc" -eq 2 ] && [ "$(wc -l <"$tmp/bad.err")" -eq 1 ] || { echo "--seq-len 2: exit $rc, expected 2"; cat "$tmp/bad.err"; exit 1; }
echo ok
