#!/usr/bin/env bash
# BBT against BBTv2 at the same budget on the demo's tiny model, over seeds: the planted task whose
# hidden prompt is deep (task.planted_deep = true: labels from a random deep z*) and the demo's own
# planted task (an input prompt). Prints test accuracy mean +- std per (task, method) and writes
# results/compare_bbtv2/summary.txt. Usage: scripts/compare_bbtv2.sh [SEEDS (default 5)] [BUDGET]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
bbt=${BBT_BUILD_DIR:-$here/build}/bbt
seeds=${1:-5}
budget=${2:-3000}
out=results/compare_bbtv2
mkdir -p "$out"
if [[ ! -f results/demo-model/model.safetensors ]]; then
  "$bbt" make-tiny-model --out results/demo-model --layers 2 --hidden 64 --heads 4 --intermediate 128 \
    --seed 1 --init-std 0.1 >/dev/null
fi
for deep in true false; do
  for method in bbt bbtv2; do
    for seed in $(seq 1 "$seeds"); do
      name=deep_$deep-$method-$seed
      [[ -f $out/$name/run.h5 ]] && continue
      "$bbt" train --config configs/demo_bbtv2.ini --method.name $method --task.planted_deep $deep \
        --cma.seed "$seed" --cma.budget "$budget" --output.dir "$out" --output.run_name "$name" >"$out/$name.log"
    done
  done
done
/usr/bin/python3 - "$out" "$seeds" <<'PY' | tee "$out/summary.txt"
import sys, h5py, numpy as np
out, seeds = sys.argv[1], int(sys.argv[2])
print(f"{'hidden prompt':<14} {'method':<6} {'test acc mean +- std':<22} {'zero prompt':<12} {'calls':<6} runs")
for deep in ["true", "false"]:
    for method in ["bbt", "bbtv2"]:
        acc, zero, calls = [], [], []
        for s in range(1, seeds + 1):
            with h5py.File(f"{out}/deep_{deep}-{method}-{s}/run.h5", "r") as f:
                acc.append(float(f["test/metric"][()]))
                zero.append(float(f["test/initial_metric"][()]))
                calls.append(int(f["train/api_calls"][-1]))
        kind = "deep" if deep == "true" else "input"
        print(f"{kind:<14} {method:<6} {np.mean(acc):.3f} +- {np.std(acc, ddof=1):.3f}{'':<8} {np.mean(zero):.3f}{'':<7} {calls[0]:<6} {seeds}")
PY
