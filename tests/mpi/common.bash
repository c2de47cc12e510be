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
