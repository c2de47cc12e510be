#!/usr/bin/env bash
# Rank scaling of the real training job: `bbt train` under mpirun -np 1 and -np 2, one thread per
# rank, same config; prints the median and mean seconds per generation (/train/seconds_total) of
# each and the ratios (the mean one is generations per second over the whole run). Builds nothing.
# The runs alternate (1, 2, 1, 2 ...) so that load from other work on a shared machine hits both
# alike.
# usage: bench/scaling.sh [rounds (default 2)]
# env: BBT (default build/bbt), PYTHON (/usr/bin/python3), MODEL_DIR (reused if present),
#      SCALE_LAYERS/HIDDEN/HEADS/FFN (model shape, default 4/256/4/1024), BUDGET (default 400),
#      SCALE_COVARIANCE (full or diagonal, default full)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bbt=${BBT:-$here/build/bbt}
py=${PYTHON:-/usr/bin/python3}
rounds=${1:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
model=${MODEL_DIR:-$work/model}
[[ -f $model/model.safetensors ]] ||
  "$bbt" make-tiny-model --out "$model" --layers "${SCALE_LAYERS:-4}" --hidden "${SCALE_HIDDEN:-256}" \
    --heads "${SCALE_HEADS:-4}" --intermediate "${SCALE_FFN:-1024}" --seed 1 --init-std 0.1 >/dev/null
cat >"$work/scaling.ini" <<INI
[model]
path = $model
threads = 1
[task]
name = planted
k_shot = 16
split_seed = 42
planted_seed = 7
planted_pool = 400
planted_test = 100
[prompt]
n_tokens = 50
mode = add
intrinsic_dim = 500
projection = normal
alpha = 100
[cma]
popsize = 20
sigma0 = 1
budget = ${BUDGET:-400}
covariance = ${SCALE_COVARIANCE:-full}
seed = 42
[loss]
type = ce
[eval]
every = 100000
test = false
[output]
dir = $work/runs
checkpoint_every = 1000
log_every = 1000
INI
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
runs1=() runs2=()
for ((r = 0; r < rounds; ++r)); do
  for np in 1 2; do
    name=np$np-$r
    mpirun -np "$np" --oversubscribe --bind-to none "$bbt" train --config "$work/scaling.ini" \
      --output.run_name "$name" >"$work/$name.log" 2>&1 || { cat "$work/$name.log" >&2; exit 1; }
    if [[ $np == 1 ]]; then runs1+=("$work/runs/$name/run.h5"); else runs2+=("$work/runs/$name/run.h5"); fi
  done
done
"$py" - "${runs1[*]}" "${runs2[*]}" <<'PY'
import json, sys
import h5py, numpy as np
def per_gen(paths):
    s = []
    for p in paths.split():
        with h5py.File(p, "r", swmr=True) as f:
            s.extend(f["/train/seconds_total"][1:])  # the first generation includes warm-up
    return np.array(s)
def mpi_share(paths):
    # Each rank's seconds inside MPI calls over its forward + MPI seconds, whole runs.
    fw = cm = 0
    for p in paths.split():
        with h5py.File(p, "r", swmr=True) as f:
            if "seconds_comm_ranks" not in f["train"]:
                return None
            fw = fw + f["/train/seconds_forward_ranks"][1:].sum(axis=0)
            cm = cm + f["/train/seconds_comm_ranks"][1:].sum(axis=0)
    return [round(float(c / (a + c)), 4) for a, c in zip(fw, cm)]
s1, s2 = per_gen(sys.argv[1]), per_gen(sys.argv[2])
# Generations per second over the whole run is a mean; the median ignores periodic stalls.
print(json.dumps({"median_seconds_per_generation_np1": float(np.median(s1)),
                  "median_seconds_per_generation_np2": float(np.median(s2)),
                  "mean_seconds_per_generation_np1": float(s1.mean()),
                  "mean_seconds_per_generation_np2": float(s2.mean()),
                  "generations": [len(s1), len(s2)],
                  "speedup_np2_over_np1": float(np.median(s1) / np.median(s2)),
                  "speedup_np2_over_np1_mean": float(s1.mean() / s2.mean()),
                  "mpi_share_of_time_per_rank_np2": mpi_share(sys.argv[2])}))
PY
