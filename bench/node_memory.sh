#!/usr/bin/env bash
# Memory and start-up at node scale (issue 20): one `bbt train` of one generation per rank count,
# on a random model of RoBERTa's shapes, on this node. Prints one JSON line per run and a summary
# per configuration (medians over the repeats):
#   total_pss_mb   sum over the ranks of /cost/pss_bytes (proportional set size at the run's end:
#                  pages the ranks share, the weights among them, count once) — the node's memory;
#   total_rss_mb   sum of /cost/peak_rss_bytes (each rank counts the shared weights in full);
#   load_s         rank 0's model load ("loaded in" in the run log: read, convert, share);
#   startup_s      mpirun's wall time minus the generation's own seconds (/train/seconds_total):
#                  launch, load, tokenisation, broadcast, run file, and MPI_Finalize.
# "own" runs the same rank count with BBT_TEST_NO_SHARED_WINDOW=1: every rank loads its own copy
# (as before issue 20), for the side-by-side figure.
# usage: bench/node_memory.sh [--shape base|large|tiny] [--ranks "1 2"] [--repeats R] [--own]
# env: BBT (default build/bbt), PYTHON (default /usr/bin/python3), MODEL_DIR (reused if present;
# otherwise made under $TMPDIR and deleted at the end)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bbt=${BBT:-$here/build/bbt}
py=${PYTHON:-/usr/bin/python3}
shape=base ranks="1 2" repeats=3 own=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --shape) shape=$2; shift 2 ;;
    --ranks) ranks=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --own) own=1; shift ;;
    *) echo "node_memory.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
case $shape in
  base) dims=(--layers 12 --hidden 768 --heads 12 --intermediate 3072) ;;
  large) dims=(--layers 24 --hidden 1024 --heads 16 --intermediate 4096) ;;
  tiny) dims=(--layers 2 --hidden 64 --heads 4 --intermediate 128) ;;
  *) echo "node_memory.sh: --shape must be base, large or tiny" >&2; exit 2 ;;
esac
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
work=$(mktemp -d "${TMPDIR:-/tmp}/bbt-node-memory.XXXXXX")
model=${MODEL_DIR:-$work/model}
trap 'rm -rf "$work"' EXIT
[[ -f $model/model.safetensors ]] || "$bbt" make-tiny-model --out "$model" "${dims[@]}" --seed 1 >/dev/null
# A small sst2-format task: real text through the tokenizer (64 lines), 2 examples per class and
# 2 candidates: one short generation.
{ echo "sentence	label"; for i in $(seq 64); do echo "a fine film number $i, worth seeing	$((i % 2))"; done; } >"$work/sst.tsv"
run() {  # run NAME RANKS [mpirun args...]
  local name=$1 n=$2
  shift 2
  local t0 t1
  t0=$(date +%s.%N)
  mpirun -np "$n" "$@" "$bbt" train --model.path "$model" --task.name sst2 --task.k_shot 2 \
    --task.train_file "$work/sst.tsv" --task.test_file "$work/sst.tsv" --prompt.n_tokens 5 \
    --prompt.intrinsic_dim 500 --cma.popsize 2 --cma.budget 2 --eval.every 1000000 --eval.test false \
    --output.dir "$work/results" --output.run_name "$name" >"$work/$name.out" 2>&1 ||
    { cat "$work/$name.out" >&2; exit 1; }
  t1=$(date +%s.%N)
  "$py" - "$work/results/$name/run.h5" "$work/$name.out" "$t0" "$t1" "$name" "$n" <<'PY'
import json, re, sys, h5py
f = h5py.File(sys.argv[1], "r")
log = open(sys.argv[2]).read()
load = float(re.search(r"loaded in ([0-9.]+) s", log).group(1))
pss, rss = f["cost/pss_bytes"][()], f["cost/peak_rss_bytes"][()]
wall = float(sys.argv[4]) - float(sys.argv[3])
print(json.dumps({"run": sys.argv[5], "ranks": int(sys.argv[6]), "weights_mb": round(f["cost/server_bytes"][()] / 1e6, 1),
                  "total_pss_mb": round(pss.sum() / 1e6, 1), "pss_mb": [round(x / 1e6, 1) for x in pss],
                  "total_rss_mb": round(rss.sum() / 1e6, 1), "load_s": load,
                  "startup_s": round(wall - float(f["train/seconds_total"][()].sum()), 2), "wall_s": round(wall, 2),
                  "shared": "one copy shared" in log}))
PY
}
lines=()
for ((r = 0; r < repeats; ++r)); do
  for n in $ranks; do
    lines+=("$(run "np$n-r$r" "$n")")
    echo "${lines[-1]}"
    if [[ $own == 1 && $n -gt 1 ]]; then
      lines+=("$(run "own$n-r$r" "$n" -x BBT_TEST_NO_SHARED_WINDOW=1)")
      echo "${lines[-1]}"
    fi
  done
done
printf '%s\n' "${lines[@]}" | "$py" -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
groups = {}
for r in rows:
    groups.setdefault((r["ranks"], r["shared"] or r["ranks"] == 1), []).append(r)
base = None
for (n, shared), rs in sorted(groups.items()):
    med = {k: statistics.median(r[k] for r in rs) for k in ("total_pss_mb", "total_rss_mb", "load_s", "startup_s")}
    if n == 1: base = med["total_pss_mb"]
    label = f"-np {n}" + ("" if n == 1 else " shared" if shared else " own copies")
    print(json.dumps({"summary": label, "repeats": len(rs), "weights_mb": rs[0]["weights_mb"], **med,
                      "pss_vs_np1": round(med["total_pss_mb"] / base, 3) if base else None}))
'
