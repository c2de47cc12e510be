#!/usr/bin/env bash
# What a resume may and may not do (issue 14, defects 3 and 4, failed starts):
# - an override that changes what the run computes is refused in one line naming key, old and new
#   value; allowed ones (log cadence, threads, a larger budget) run and are recorded in the file;
# - a checkpoint slot with NaN in the CMA-ES state is not used: the other slot is, with a warning;
#   with both damaged the resume is refused in one line; /checkpoint/latest out of range is named;
# - a run file without a checkpoint (a failed start) restarts with the same command or --resume.
source "$(dirname "$0")/common.bash"
export OMPI_MCA_orte_execute_quiet=1
make_tiny m
write_config c.ini "$PWD/m" 3000
# A run stopped with SIGUSR1 after a few generations (budget 3000: 300 generations, so it cannot end
# before the signal on an idle machine; 300 did in clean-clone CI).
mpirun -np 1 "$BBT" train --config c.ini --output.run_name s >s.log 2>&1 &
pid=$!
wait_rows results/s/run.h5 7
kill -USR1 $pid
wait $pid
check "stopped run exits 75" test $? -eq 75
srun=results/s/run.h5
cp $srun s-copy.h5

refused() {  # refused WHAT KEY OLD NEW ARGS...: exit 2, one line naming key, old and new value
  local what=$1 key=$2 old=$3 new=$4
  shift 4
  timeout 120 mpirun -np 2 "$BBT" train --resume $srun "$@" >ref.log 2>ref.err
  local code=$?
  check "$what: refused with exit 2 (got $code)" test "$code" -eq 2
  check "$what: one line naming $key, $old and $new: $(head -c 300 ref.err)" \
    test "$(wc -l <ref.err)" -eq 1 -a "$(grep -c -- "--$key $new would change what the run computes ($key = $old in the run file)" ref.err)" -eq 1
}
refused "task.split_seed" task.split_seed 42 13 --task.split_seed 13
refused "cma.seed" cma.seed 42 7 --cma.seed 7
refused "prompt.alpha" prompt.alpha 1e+02 5e+01 --prompt.alpha 50
refused "a smaller budget" cma.budget 3000 2990 --cma.budget 2990
check "refusals leave the file alone" cmp -s $srun s-copy.h5

# Allowed: threads, log cadence and a larger budget; recorded in the file.
timeout 300 mpirun -np 2 "$BBT" train --resume $srun --model.threads 1 --output.log_every 2 --cma.budget 3010 \
  >ok.log 2>ok.err
code=$?
check "allowed overrides resume and finish (exit $code)" test "$code" -eq 0
check "... to the raised budget" test "$(h5 $srun 'int(f["train/api_calls"][-1])')" = 3010
check "... the stored configuration says budget 3010" grep -q "budget = 3010" <(h5 $srun 'f.attrs["config"]')
check "... the resume history names the command and the change" \
  grep -q "at generation .*: bbt train --resume .*--cma.budget 3010 (changed: cma.budget 3000 -> 3010, output.log_every 5 -> 2)" \
  <(h5 $srun 'f.attrs["resumes"]')
check "... the weights fingerprint is recorded" test "$(h5 $srun 'len(f.attrs["weights_fingerprint"])')" = 16

# --config with --resume, --config twice, --resume twice: refused in one line, exit 2.
for args in "--config c.ini --resume $srun" "--config c.ini --config c.ini" "--resume $srun --resume $srun"; do
  timeout 60 mpirun -np 2 "$BBT" train $args >dup.log 2>dup.err
  code=$?
  check "'$args' refused (exit $code): $(cat dup.err)" test "$code" -eq 2 -a "$(wc -l <dup.err)" -eq 1
done

# Another model (same shapes, other weights) at another path: refused by fingerprint.
"$BBT" make-tiny-model --out m2 --layers 2 --hidden 32 --heads 4 --intermediate 64 --seed 4 --init-std 0.1 >/dev/null
cp -r m mcopy
cp s-copy.h5 t.h5
timeout 120 mpirun -np 1 "$BBT" train --resume t.h5 --model.path "$PWD/m2" >fp.log 2>fp.err
code=$?
check "other weights under --model.path refused (exit $code): $(cat fp.err)" \
  test "$code" -eq 1 -a "$(grep -c "holds other weights" fp.err)" -eq 1 -a "$(wc -l <fp.err)" -eq 1
timeout 120 mpirun -np 1 "$BBT" train --resume t.h5 --model.path "$PWD/mcopy" >cp.log 2>&1
check "a copy of the same model under --model.path resumes (exit $?)" test "$(h5 t.h5 'int(f["run/finished"][()])')" = 1

# Defect 4: NaN in the latest slot's CMA-ES mean and covariance.
damage() {  # damage FILE SLOT
  "$PYTHON" - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    g = f[f"checkpoint/slot{sys.argv[2]}/cma"]
    g["mean"][...] = np.nan
    g["cov"][...] = np.nan
PY
}
cp s-copy.h5 d.h5
latest=$(h5 d.h5 'int(f["checkpoint/latest"][()])')
older=$(h5 d.h5 "int(f['checkpoint/slot$((1 - latest))/generation'][()])")
damage d.h5 "$latest"
timeout 300 mpirun -np 2 "$BBT" train --resume d.h5 >d.log 2>d.err
code=$?
check "a damaged latest slot: resumes from the other (exit $code)" test "$code" -eq 0
check "... with one warning naming the slot and the damage: $(cat d.err)" \
  grep -q "bbt: warning: d.h5: /checkpoint/slot$latest (the latest): generation .*'mean' holds 20 non-finite value(s); resuming from /checkpoint/slot$((1 - latest)) (generation $older)" d.err
check "... and the run has finite losses" test "$(h5 d.h5 'int(np.isfinite(f["train/loss"][()]).all())')" = 1
cp s-copy.h5 d2.h5
damage d2.h5 0
damage d2.h5 1
timeout 120 mpirun -np 2 "$BBT" train --resume d2.h5 >d2.log 2>d2.err
code=$?
check "both slots damaged: refused (exit $code): $(cat d2.err)" test "$code" -eq 1 -a "$(wc -l <d2.err)" -eq 1
check "... naming both slots" grep -q "no usable checkpoint to resume from: /checkpoint/slot.*non-finite.*; /checkpoint/slot.*non-finite" d2.err
check "... leaving the file as it was (not finished)" test "$(h5 d2.h5 'int(f["run/finished"][()])')" = 0
cp s-copy.h5 l.h5
"$PYTHON" -c 'import h5py,sys; f=h5py.File("l.h5","r+"); f["checkpoint/latest"][()]=7; f.close()'
timeout 300 mpirun -np 1 "$BBT" train --resume l.h5 >l.log 2>l.err
code=$?
check "/checkpoint/latest = 7: named, and a good slot is used (exit $code): $(cat l.err)" \
  test "$code" -eq 0 -a "$(grep -c '/checkpoint/latest is 7 (expected 0 or 1)' l.err)" -eq 1

# A failed start: a run file with no checkpoint (killed before its first one; or not even HDF5).
write_config c2.ini "$PWD/m" 100000
sed -i 's/checkpoint_every = 3/checkpoint_every = 1000/' c2.ini
mpirun -np 1 "$BBT" train --config c2.ini --output.run_name f >f.log 2>&1 &
pid=$!
wait_rows results/f/run.h5 2
kill -9 $pid
wait $pid 2>/dev/null
check "killed before its first checkpoint: state partial" test "$("$BBT" report --state results/f/run.h5)" = partial
timeout 120 mpirun -np 1 "$BBT" train --resume results/f/run.h5 --cma.budget 50 >f2.log 2>f2.err
code=$?
check "--resume on it (any override goes) starts afresh (exit $code): $(cat f2.err)" test "$code" -eq 0
check "... saying so and keeping the old file aside" grep -q "holds no checkpoint (a failed start); kept as results/f/run.h5.partial-" f2.log
check "... and the new run finishes" test "$(h5 results/f/run.h5 'int(f["run/finished"][()])')" = 1
mkdir -p results/g && echo "not hdf5" >results/g/run.h5
timeout 120 mpirun -np 1 "$BBT" train --config c.ini --output.run_name g --cma.budget 50 >g.log 2>g.err
code=$?
check "a run file that is not HDF5: the same train command starts afresh (exit $code): $(cat g.err)" test "$code" -eq 0
check "... keeping it aside" test "$(cat results/g/run.h5.partial-*)" = "not hdf5"
timeout 60 mpirun -np 1 "$BBT" train --resume results/g/run.h5.partial-* >g2.log 2>g2.err
check "--resume on a non-HDF5 file says how to restart: $(cat g2.err)" grep -q "run the command that created it again" g2.err
exit $fail
