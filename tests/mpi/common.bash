# Shared by the MPI tests (sourced): a tiny model, a small planted-task configuration, helpers.
set -u
: "${BBT:?BBT must point at the bbt binary}" "${BBT_SOURCE_DIR:?}" "${BBT_SCRATCH:?}"
PYTHON=${PYTHON:-/usr/bin/python3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
rm -rf "$BBT_SCRATCH"
mkdir -p "$BBT_SCRATCH"
cd "$BBT_SCRATCH"
fail=0

check() {  # check "what" command...
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi
}

make_tiny() {  # make_tiny DIR
  "$BBT" make-tiny-model --out "$1" --layers 2 --hidden 32 --heads 4 --intermediate 64 --seed 3 --init-std 0.1 >/dev/null
}

write_config() {  # write_config FILE MODEL_DIR BUDGET
  cat >"$1" <<INI
[model]
path = $2
threads = 1
[task]
name = planted
k_shot = 16
planted_pool = 400
planted_test = 200
[prompt]
n_tokens = 5
intrinsic_dim = 20
alpha = 100
[cma]
popsize = 10
budget = $3
[loss]
logit_scale = 10
[eval]
every = 40
[output]
dir = $BBT_SCRATCH/results
checkpoint_every = 3
log_every = 5
INI
}

h5() {  # h5 RUN.h5 PYTHON-EXPRESSION-USING-f  -> prints the value
  "$PYTHON" - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r", swmr=True)
np.set_printoptions(precision=17, threshold=10**9, linewidth=10**9)
print(eval(sys.argv[2]))
PY
}

rows() { h5 "$1" 'len(f["train/generation"])' 2>/dev/null || echo 0; }  # rows RUN.h5: generations written
wait_rows() {  # wait_rows RUN.h5 N: until the live file holds N generations (SWMR read); 120 s at most
  for _ in $(seq 1 1200); do [[ $(rows "$1") -ge $2 ]] && return 0; sleep 0.1; done
  return 1
}

same_run() {  # same_run A.h5 B.h5 TOL: loss series, best z and test metric agree within TOL
  "$PYTHON" - "$1" "$2" "$3" <<'PY'
import sys, h5py, numpy as np
a, b, tol = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r"), float(sys.argv[3])
ok = True
for name in ["train/loss", "train/best_loss", "train/sigma", "dev/metric", "best/z", "test/metric", "test/initial_metric"]:
    x, y = np.asarray(a[name][()], dtype=float), np.asarray(b[name][()], dtype=float)
    if x.shape != y.shape:
        print(f"  {name}: shapes {x.shape} vs {y.shape}"); ok = False; continue
    d = float(np.max(np.abs(x - y))) if x.size else 0.0
    print(f"  {name}: max |difference| {d:.3g}")
    ok &= d <= tol
sys.exit(0 if ok else 1)
PY
}

# make_token_task: a tiny model m/ and a task a token decides (the key word "good" or "bad" somewhere
# among filler words): train.jsonl (300 rows), test.jsonl (150) and c.ini for the baseline methods.
make_token_task() {
  make_tiny m
  "$PYTHON" - <<'PY'
import json, random
rng = random.Random(5)
filler = "the a table house river green small walk blue tree city music paper stone light road".split()
def rows(n):
    out = []
    for _ in range(n):
        words = [rng.choice(filler) for _ in range(rng.randint(1, 4))]
        label = rng.randint(0, 1)
        words.insert(rng.randint(0, len(words)), ["bad", "good"][label])
        out.append({"text": " ".join(words), "label": label})
    return out
for name, n in [("train.jsonl", 300), ("test.jsonl", 150)]:
    with open(name, "w") as f:
        for r in rows(n):
            f.write(json.dumps(r) + "\n")
PY
  cat >c.ini <<INI
[model]
path = $PWD/m
threads = 1
[task]
name = custom
train_file = $PWD/train.jsonl
test_file = $PWD/test.jsonl
template = {prompt} {text} . It was <mask> .
verbalizer = bad,good
k_shot = 32
[icl]
demonstrations = 4
[classifier]
hidden = 64
epochs = 600
patience = 100
lr = 0.01
[eval]
batch_size = 8
[output]
dir = $PWD/results
INI
}

same_bits() {  # same_bits A.h5 B.h5: every dataset but clocks, checkpoints and costs (what was measured)
  "$PYTHON" - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
names = []
a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
ok = True
for n in names:
    if n.startswith(("run/seconds", "checkpoint/", "cost/")) or "seconds" in n:
        continue
    x, y = a[n][()], b[n][()]
    if not np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True):
        print("  differs:", n); ok = False
print("  compared", len(names), "datasets")
sys.exit(0 if ok else 1)
PY
}

# same_value JSON RUN.h5 DATASET: `bbt eval`'s JSON value equals the run file's dataset exactly.
same_value() {  # same_value JSON RUN.h5 DATASET
  "$PYTHON" -c 'import json, sys, h5py
v = json.loads(sys.argv[1])["value"]
w = float(h5py.File(sys.argv[2], "r")[sys.argv[3]][()])
print("  eval", v, "stored", w)
sys.exit(0 if v == w else 1)' "$@"
}

# cut_fit FINISHED.h5 CUT.h5: a copy of a finished no-step run as if killed during its fit (its
# series cut to 3 rows, the test and the end unwritten): what a resume must finish to the same bits.
cut_fit() {
  mkdir -p "$(dirname "$2")" && cp "$1" "$2"
  "$PYTHON" - "$2" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    f["run/finished"][()] = 0
    for name in ["test/metric", "test/loss", "run/seconds_total"]:
        f[name][()] = np.nan
    for group in ["train", "dev"]:
        if group in f:
            for d in f[group].values():
                d.resize((min(d.shape[0], 3),) + d.shape[1:])
PY
}

# kill_fit REF.h5 NAME NP ARGS...: `bbt train ARGS --output.run_name NAME` on 2 ranks, every process
# SIGKILLed once its fit has recorded 7 steps (checkpoints every output.checkpoint_every steps), then
# resumed on NP ranks: the resume must continue from a checkpoint inside the fit (not its start) and
# end with the bits of REF.h5, the same run uninterrupted on 2 ranks. The run must take well over
# 7 steps so the kill lands inside it.
fit_rows() { h5 "$1" 'len(f["train/tuning_loss"])' 2>/dev/null || echo 0; }
kill_fit() {
  local ref=$1 name=$2 np=$3
  shift 3
  setsid mpirun -np 2 "$BBT" train "$@" --output.run_name "$name" >"$name.log" 2>&1 &
  for _ in $(seq 1 1200); do [[ $(fit_rows "results/$name/run.h5") -ge 7 ]] && break; sleep 0.1; done
  pkill -9 -f -- "--output.run_name $name\$"
  wait
  local at
  at=$(fit_rows "results/$name/run.h5")
  timeout 300 mpirun -np "$np" "$BBT" train --resume "results/$name/run.h5" >"$name-resumed.log" 2>&1
  check "$name: resume on $np ranks after SIGKILL at step $at finishes" test $? -eq 0
  check "$name: it resumed from a checkpoint inside the fit" grep -q "resumed at generation [1-9]" "$name-resumed.log"
  check "$name: killed+resumed run equals the uninterrupted one" same_bits "$ref" "results/$name/run.h5"
}
