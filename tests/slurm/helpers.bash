# Shared by tests/slurm/*.sh (sourced; not a test itself): a private SLURM per test, the tiny run config,
# bounded waits, and run-file checks with h5py. Env from CTest: BBT, BBT_SOURCE_DIR, BBT_SCRATCH, PYTHON.
# shellcheck shell=bash
set -uo pipefail

: "${BBT:?BBT (the bbt binary) must be set}"
: "${BBT_SOURCE_DIR:?BBT_SOURCE_DIR must be set}"
: "${BBT_SCRATCH:?BBT_SCRATCH must be set}"
PYTHON=${PYTHON:-/usr/bin/python3}
SRC=$BBT_SOURCE_DIR
SCRATCH=$BBT_SCRATCH
SKIP=77

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
note() { echo "--- $*" >&2; }

skip_unless_root() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "SKIP: a private slurmd/munged needs root" >&2
    exit "$SKIP"
  fi
}

# Starts a private SLURM under /tmp (unix socket paths must stay short) and stops it on exit, always.
start_slurm() {
  skip_unless_root
  SLURM_DIR=$(mktemp -d /tmp/bbt-slurm-test.XXXXXX) || fail "mktemp"
  trap 'bash "$SRC/scripts/slurm_local.sh" stop "$SLURM_DIR" >/dev/null 2>&1; rm -rf "$SLURM_DIR"' EXIT
  local env
  env=$(timeout 90 bash "$SRC/scripts/slurm_local.sh" start "$SLURM_DIR") || fail "slurm_local.sh start failed"
  eval "$env"
  [[ $SLURM_CONF == "$SLURM_DIR/slurm.conf" ]] || fail "start printed no SLURM_CONF"
}

# Dumps what helps when a job went wrong.
dump_logs() {
  local f
  for f in "$@" "$SLURM_DIR"/log/slurmctld.log "$SLURM_DIR"/log/slurmd.log; do
    [[ -f $f ]] || continue
    echo "===== $f (tail)" >&2
    tail -40 "$f" >&2
  done
}

# A tiny random RoBERTa and a config whose run is G generations of popsize 4, with the planted task
# (labels made by the model itself under a hidden prompt), all on CPU. BBT_TEST_CONFIG replaces it.
# Writes $SCRATCH/configs/tiny.ini; sets TINY_CONFIG and TINY_GENERATIONS.
make_tiny_config() {
  local generations=$1 popsize=4
  mkdir -p "$SCRATCH/configs" "$SCRATCH/results"
  TINY_CONFIG=$SCRATCH/configs/tiny.ini
  if [[ -n ${BBT_TEST_CONFIG:-} ]]; then
    cp "$BBT_TEST_CONFIG" "$TINY_CONFIG" || fail "cannot copy $BBT_TEST_CONFIG"
  else
    if [[ ! -f $SCRATCH/model/config.json ]]; then
      "$BBT" make-tiny-model --out "$SCRATCH/model" --layers 1 --hidden 32 --heads 2 --seed 7 --init-std 0.1 >/dev/null ||
        fail "bbt make-tiny-model failed"
    fi
    cat >"$TINY_CONFIG" <<EOF
[model]
path = $SCRATCH/model
device = cpu
threads = 1
[task]
name = planted
k_shot = 8
split_seed = 42
planted_pool = 400
planted_test = 200
[prompt]
n_tokens = 5
mode = add
intrinsic_dim = 10
alpha = 100
[cma]
popsize = $popsize
sigma0 = 1
budget = $((popsize * generations))
seed = 42
[loss]
type = ce
logit_scale = 10
[eval]
every = $((popsize * 10))
test = true
[output]
dir = $SCRATCH/results
checkpoint_every = 2
EOF
  fi
  TINY_GENERATIONS=$("$PYTHON" -c '
import configparser, sys
c = configparser.ConfigParser(); c.read(sys.argv[1])
b, p = c.getint("cma", "budget"), c.getint("cma", "popsize")
assert b % p == 0, "budget must be a multiple of popsize"
print(b // p)' "$TINY_CONFIG") || fail "cannot read budget/popsize of $TINY_CONFIG"
}

# Site file for the jobs: the built binary, results in scratch, configs in scratch.
write_site_env() {
  SITE_ENV=$SCRATCH/site.env
  cat >"$SITE_ENV" <<EOF
BBT_BIN=$BBT
BBT_RESULTS=$SCRATCH/results
BBT_CONFIG_DIR=$SCRATCH/configs
BBT_MODULES=
EOF
  export BBT_SITE_ENV=$SITE_ENV BBT_ROOT=$SRC
}

# sbatch options of every test job: CPU only, 2 ranks of 1 CPU each, short limit, logs in scratch.
SBATCH_TEST_OPTS=(--gpus-per-task=0 --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 --time=20 --chdir="$SCRATCH")

# Checks a finished run file: generations 0..G-1 each once, losses per candidate, a test metric, n_ranks.
# Args: RUN.h5 G RANKS [split_seed]
check_run_file() {
  "$PYTHON" - "$@" <<'EOF' || fail "run file check failed: $1"
import configparser, math, sys
import h5py, numpy as np
path, G, ranks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
seed = sys.argv[4] if len(sys.argv) > 4 else None
with h5py.File(path, "r") as f:
    gen = f["train/generation"][:]
    assert len(gen) == G, f"{path}: {len(gen)} generations, expected {G}"
    assert np.array_equal(gen, np.arange(G)), f"{path}: generations not 0..{G-1} once each: {gen.tolist()}"
    loss = f["train/loss"][:]
    assert loss.shape[0] == G and np.all(np.isfinite(loss)), f"{path}: /train/loss {loss.shape} not finite"
    metric = float(f["test/metric"][()])
    assert math.isfinite(metric) and 0.0 <= metric <= 1.0, f"{path}: /test/metric = {metric}"
    n = int(f.attrs["n_ranks"])
    assert n == ranks, f"{path}: n_ranks = {n}, expected {ranks} (did srun start one MPI job?)"
    if seed is not None:
        c = configparser.ConfigParser()
        c.read_string(f.attrs["config"] if isinstance(f.attrs["config"], str) else f.attrs["config"].decode())
        assert c.get("task", "split_seed") == seed, f"{path}: task.split_seed {c.get('task', 'split_seed')} != {seed}"
    print(f"ok {path}: {G} generations, test metric {metric:.3f}, {n} ranks")
EOF
}

# Number of generations in a run file that is being written (0 if unreadable right now).
generations_so_far() {
  HDF5_USE_FILE_LOCKING=FALSE "$PYTHON" - "$1" <<'EOF' 2>/dev/null || echo 0
import sys, h5py
try:
    f = h5py.File(sys.argv[1], "r", swmr=True)
except OSError:
    f = h5py.File(sys.argv[1], "r")
with f:
    print(len(f["train/generation"]))
EOF
}

# A field of `scontrol show job` (empty once the job has aged out).
job_field() { timeout 10 scontrol show job "$1" 2>/dev/null | grep -o "\b$2=[^ ]*" | head -1 | cut -d= -f2; }
