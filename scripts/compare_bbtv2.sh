#!/usr/bin/env bash
# BBT against BBTv2 at the same budget on the demo's tiny model, over seeds: the planted task whose
# hidden prompt is deep (task.planted_deep = true: labels from a random deep z*), once per
# prompt.alpha in DEEP_ALPHAS (default "3 10 100": the deep prompt's size against the hidden states it
# is added to), and the demo's own planted task (an input prompt, the demo's alpha 100). Prints test
# accuracy mean +- std per (task, alpha, method) and writes results/compare_bbtv2/summary.txt.
# Usage: [DEEP_ALPHAS="3 10"] scripts/compare_bbtv2.sh [SEEDS (default 5)] [BUDGET (default 3000)]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
bbt=${BBT_BUILD_DIR:-$here/build}/bbt
seeds=${1:-5}
budget=${2:-3000}
deep_alphas=${DEEP_ALPHAS:-3 10 100}
out=results/compare_bbtv2
mkdir -p "$out"
if [[ ! -f results/demo-model/model.safetensors ]]; then
  "$bbt" make-tiny-model --out results/demo-model --layers 2 --hidden 64 --heads 4 --intermediate 128 \
    --seed 1 --init-std 0.1 >/dev/null
fi
rows=()
for alpha in $deep_alphas; do rows+=("true $alpha"); done
rows+=("false 100")
for row in "${rows[@]}"; do
  read -r deep alpha <<<"$row"
  for method in bbt bbtv2; do
    for seed in $(seq 1 "$seeds"); do
      name=deep_$deep-alpha_$alpha-$method-$seed
      [[ -f $out/$name/run.h5 ]] && continue
      "$bbt" train --config configs/demo_bbtv2.ini --method.name $method --task.planted_deep $deep \
        --prompt.alpha "$alpha" --cma.seed "$seed" --cma.budget "$budget" --output.dir "$out" \
        --output.run_name "$name" >"$out/$name.log"
    done
  done
done
/usr/bin/python3 - "$out" "$seeds" "${rows[@]}" <<'PY' | tee "$out/summary.txt"
import sys, h5py, numpy as np
out, seeds, rows = sys.argv[1], int(sys.argv[2]), [r.split() for r in sys.argv[3:]]
print(f"{'hidden prompt':<14} {'alpha':<6} {'method':<6} {'test acc mean +- std':<22} {'zero prompt':<12} {'calls':<6} runs")
for deep, alpha in rows:
    for method in ["bbt", "bbtv2"]:
        acc, zero, calls = [], [], []
        for s in range(1, seeds + 1):
            with h5py.File(f"{out}/deep_{deep}-alpha_{alpha}-{method}-{s}/run.h5", "r") as f:
                acc.append(float(f["test/metric"][()]))
                zero.append(float(f["test/initial_metric"][()]))
                calls.append(int(f["train/api_calls"][-1]))
        kind = "deep" if deep == "true" else "input"
        std = np.std(acc, ddof=1) if len(acc) > 1 else 0.0
        print(f"{kind:<14} {alpha:<6} {method:<6} {np.mean(acc):.3f} +- {std:.3f}{'':<8} {np.mean(zero):.3f}{'':<7} {calls[0]:<6} {seeds}")
PY
