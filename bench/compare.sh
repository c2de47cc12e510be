#!/usr/bin/env bash
# bbt's black-box call vs the usual eager Hugging Face-style PyTorch implementation, on the same
# checkpoint, call and thread count; prints both JSON lines and the ratio of median calls/s, plus
# the baseline's max abs logit difference from bbt (an independent parity check). Builds nothing.
# usage: bench/compare.sh [--shape base|large|tiny] [--threads N] [--repeats R] [bbt bench forward options...]
# env: BBT (default build/bbt), PYTHON (default /usr/bin/python3), MODEL_DIR (reused if present)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bbt=${BBT:-$here/build/bbt}
py=${PYTHON:-/usr/bin/python3}
shape=base threads=$(nproc) repeats=5 extra=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --shape) shape=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    *) extra+=("$1"); shift ;;
  esac
done
case $shape in
  base) dims=(--layers 12 --hidden 768 --heads 12 --intermediate 3072) ;;
  large) dims=(--layers 24 --hidden 1024 --heads 16 --intermediate 4096) ;;
  tiny) dims=(--layers 2 --hidden 64 --heads 4 --intermediate 128) ;;
  *) echo "compare.sh: --shape must be base, large or tiny" >&2; exit 2 ;;
esac
model=${MODEL_DIR:-${TMPDIR:-/tmp}/bbt-compare-$shape}
[[ -f $model/model.safetensors ]] || "$bbt" make-tiny-model --out "$model" "${dims[@]}" --seed 1 >/dev/null
call=$(mktemp -d)
trap 'rm -rf "$call"' EXIT
ours=$("$bbt" bench forward --model "$model" --threads "$threads" --repeats "$repeats" --dump "$call" "${extra[@]+"${extra[@]}"}")
theirs=$("$py" "$here/bench/baseline_hf_style.py" --model "$model" --call "$call" --threads "$threads" --repeats "$repeats")
echo "$ours"
echo "$theirs"
"$py" - "$ours" "$theirs" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({
    "shape": [a["layers"], a["hidden"], a["heads"], a["intermediate"]], "threads": a["threads"],
    "bbt_calls_per_second": a["calls_per_second"], "baseline_calls_per_second": b["calls_per_second"],
    "speedup": a["calls_per_second"] / b["calls_per_second"], "bbt_mfu": a["mfu"],
    "max_abs_diff": b["max_abs_diff_vs_bbt"], "max_abs_logit": b["max_abs_logit"]}))
PY
