#!/usr/bin/env bash
# The output file system fills mid-run: one error line, exit 1 (no crash on the way out), the run
# file stays readable, and once space is freed the run resumes and finishes. Needs a small tmpfs
# (root, mount permitted); skipped otherwise.
source "$(dirname "$0")/common.bash"
export OMPI_MCA_orte_execute_quiet=1  # as bbt's scripts set it: no Open MPI banners
mkdir -p small
mount -t tmpfs -o size=2m tmpfs small 2>/dev/null || { echo "SKIP: cannot mount a tmpfs here"; exit 77; }
trap 'umount -l "$BBT_SCRATCH/small" 2>/dev/null' EXIT
make_tiny m
write_config c.ini "$PWD/m" 1500
sed -i "s#^dir = .*#dir = $PWD/small#" c.ini
run=small/full/run.h5

timeout 300 mpirun -np 1 "$BBT" train --config c.ini --output.run_name full >full.log 2>full.err &
pid=$!
check "the run writes into the small file system" wait_rows $run 10
dd if=/dev/zero of=small/filler bs=4k >/dev/null 2>&1  # until nothing is left
wait $pid
code=$?
cat full.err
check "stderr is one line" test "$(wc -l <full.err)" -eq 1
check "disk full: exit 1 (got $code)" test "$code" -eq 1
check "one bbt error line, naming file and cause on that line" \
  test "$(grep -c 'bbt: error: rank 0: run file .*full/run.h5: .*No space left on device' full.err)" -eq 1
check "no crash on the way out" eval '! grep -qiE "signal|segmentation|backtrace" full.err'
n=$(rows $run)
check "run file readable after the failure ($n generations)" test "$n" -ge 10

rm -f small/filler
timeout 300 mpirun -np 2 "$BBT" train --resume $run >resumed.log 2>&1
code=$?
check "resume after freeing space finishes (exit $code)" test "$code" -eq 0
check "generations 0..149 exactly once" test "$(h5 $run \
  'int(list(f["train/generation"][()]) == list(range(150)))')" = 1
check "finished" test "$(h5 $run 'int(f["run/finished"][()])')" = 1
exit $fail
