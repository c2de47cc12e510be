#!/usr/bin/env bash
# README command (1): install what is needed, build, and run the main job under mpirun with 2 ranks
# on the built-in demo (a tiny random RoBERTa and a planted-prompt task; about a minute).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$here/scripts/setup.sh"
bash "$here/scripts/build.sh"
cd "$here"
bbt=${BBT_BUILD_DIR:-$here/build}/bbt
if [[ ! -f results/demo-model/model.safetensors ]]; then
  "$bbt" make-tiny-model --out results/demo-model --layers 2 --hidden 64 --heads 4 --intermediate 128 \
    --seed 1 --init-std 0.1 >/dev/null
fi
run_name=demo-$(date -u +%Y%m%d-%H%M%S)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# No Open MPI banners around bbt's one-line errors (README "Under mpirun").
export OMPI_MCA_orte_execute_quiet=${OMPI_MCA_orte_execute_quiet:-1}
mpirun -np 2 --oversubscribe "$bbt" train --config configs/demo.ini --output.run_name "$run_name"
"$bbt" report "results/$run_name/run.h5" || true
