#!/usr/bin/env bash
# BBTv2: SIGKILL + --resume (with another rank count) gives exactly the uninterrupted run; the
# checkpoint holds every layer's CMA-ES, and the layer statistics are read back, not re-measured.
source "$(dirname "$0")/common.bash"
make_tiny m
write_config c.ini "$PWD/m" 1200  # 120 generations: the kill below lands mid-run
printf '[method]\nname = bbtv2\n' >>c.ini

timeout 300 mpirun -np 2 "$BBT" train --config c.ini --output.run_name whole >whole.log 2>&1
check "uninterrupted bbtv2 run finishes" test $? -eq 0
check "checkpoint holds both layers' CMA-ES" test "$(h5 results/whole/run.h5 \
  'int("l00_mean" in f["checkpoint/slot0/bbtv2"] and "l01_mean" in f["checkpoint/slot0/bbtv2"])')" = 1

setsid mpirun -np 1 "$BBT" train --config "$PWD/c.ini" --output.run_name killed >killed.log 2>&1 &
check "live file readable while the job runs" wait_rows results/killed/run.h5 11
pkill -9 -f "$PWD/c.ini --output.run_name killed"  # this test's job only (its scratch path)
wait
n=$(rows results/killed/run.h5)
check "killed file has $n generations and a checkpoint" test "$n" -ge 11 -a \
  "$(h5 results/killed/run.h5 'int(f["checkpoint/latest"][()] in (0, 1))')" = 1
# The statistics come from the file: a changed copy there changes the projections A_l (l >= 1).
cp results/killed/run.h5 altered.h5
h5clear -s altered.h5  # the killed writer left the file marked open for SWMR writing
"$PYTHON" -c 'import h5py, sys
with h5py.File(sys.argv[1], "r+") as f:
    f["bbtv2/layer_stats"][1, 1] *= 2' altered.h5 || { echo "FAIL: cannot alter the copy"; fail=1; }
timeout 300 mpirun -np 3 "$BBT" train --resume results/killed/run.h5 >resumed.log 2>&1
check "resume after SIGKILL (3 ranks) finishes" test $? -eq 0
check "generations 0..119 exactly once" test "$(h5 results/killed/run.h5 \
  'int(list(f["train/generation"][()]) == list(range(120)))')" = 1
check "killed+resumed bbtv2 run equals the uninterrupted run exactly" same_run results/whole/run.h5 results/killed/run.h5 0
check "... and its layer series" test "$(h5 results/whole/run.h5 'f["train/layer_best_loss"][()].tobytes().hex()')" = \
  "$(h5 results/killed/run.h5 'f["train/layer_best_loss"][()].tobytes().hex()')"
timeout 300 mpirun -np 1 "$BBT" train --resume altered.h5 >altered.log 2>&1
check "a resume with altered statistics finishes" test $? -eq 0
check "... and differs (the stored statistics are used)" test "$(h5 results/whole/run.h5 'f["train/loss"][-1].tobytes().hex()')" != \
  "$(h5 altered.h5 'f["train/loss"][-1].tobytes().hex()')"
exit $fail
