#!/usr/bin/env bash
# A run file written before cma.active (tests/data/old_format, made by main at 597a330) resumes
# with the update it was started with: it ends exactly as that binary's uninterrupted run.
source "$(dirname "$0")/common.bash"
# The fixtures' forward passes ran on OpenBLAS's generic kernels, which every x86-64 CPU runs.
export OPENBLAS_CORETYPE=Prescott
fixture=$BBT_SOURCE_DIR/tests/data/old_format
make_tiny m  # the same weights the old binary made (make-tiny-model --seed 3)
cp "$fixture/part.h5" part.h5
check "the fixture has the old checkpoint layout" test "$(h5 part.h5 \
  'int("format" not in f["checkpoint/slot0/cma"] and "\nactive =" not in f.attrs["config"])')" = 1
timeout 300 mpirun -np 1 "$BBT" train --resume part.h5 --model.path "$PWD/m" >resumed.log 2>&1
check "the old run file resumes and finishes" test $? -eq 0
check "... from its checkpoint at generation 38" grep -q "resumed at generation 38" resumed.log
check "... with generations 0..59 exactly once" test "$(h5 part.h5 \
  'int(list(f["train/generation"][()]) == list(range(60)))')" = 1
check "... keeping the old checkpoint layout" test "$(h5 part.h5 'int("format" not in f["checkpoint/slot1/cma"])')" = 1
check "... and equals the old binary's uninterrupted run, bit for bit" same_run "$fixture/whole.h5" part.h5 0
check "... stop reason 0 (budget)" test "$(h5 part.h5 'int(f["run/stop_reason"][()])')" = 0
# Today's default (active) on the same task is another run: the update changed.
write_config c.ini "$PWD/m" 600
timeout 300 mpirun -np 1 "$BBT" train --config c.ini --output.run_name active >active.log 2>&1
check "an active run of the same configuration finishes" test $? -eq 0
check "... and differs from the old (passive) run" test "$(h5 results/active/run.h5 \
  'int(not (f["train/loss"][()] == __import__("h5py").File("'"$fixture"'/whole.h5", "r")["train/loss"][()]).all())')" = 1
exit $fail
