#!/usr/bin/env bash
# Kill-and-resume and signal-and-resume give exactly the run an uninterrupted job gives.
source "$(dirname "$0")/common.bash"
make_tiny m
write_config c.ini "$PWD/m" 600

timeout 300 mpirun -np 2 "$BBT" train --config c.ini --output.run_name whole >whole.log 2>&1
check "uninterrupted run finishes" test $? -eq 0

# 1. SIGKILL every process of a 1-rank job mid-run: the file keeps every flushed generation; it
# resumes with 2 ranks and ends as the uninterrupted 2-rank run, bit for bit.
setsid mpirun -np 1 "$BBT" train --config "$PWD/c.ini" --output.run_name killed >killed.log 2>&1 &
check "live file readable while the job runs (h5py, SWMR)" wait_rows results/killed/run.h5 13
pkill -9 -f "$PWD/c.ini --output.run_name killed"  # this test's job only (its scratch path)
wait
n=$(rows results/killed/run.h5)
check "killed file readable with $n generations" test "$n" -ge 13
check "killed file has a checkpoint" test "$(h5 results/killed/run.h5 'int(f["checkpoint/latest"][()] in (0, 1))')" = 1
timeout 300 mpirun -np 2 "$BBT" train --resume results/killed/run.h5 >resumed.log 2>&1
check "resume after SIGKILL finishes" test $? -eq 0
check "generations 0..59 exactly once" test "$(h5 results/killed/run.h5 \
  'int(list(f["train/generation"][()]) == list(range(60)))')" = 1
check "killed+resumed run equals the uninterrupted run exactly" same_run results/whole/run.h5 results/killed/run.h5 0

# 2. SIGUSR1 (what SLURM sends before a time limit): checkpoint, exit 75, resume.
mpirun -np 2 "$BBT" train --config c.ini --output.run_name signalled >sig.log 2>&1 &
pid=$!
wait_rows results/signalled/run.h5 7
kill -USR1 $pid
wait $pid
code=$?
check "SIGUSR1 exits 75 (checkpointed)" test "$code" -eq 75
check "checkpoint covers every written generation" test "$(h5 results/signalled/run.h5 \
  'int(f["checkpoint/generation"][()] == len(f["train/generation"]))')" = 1
check "log says how to resume" grep -q "resume with bbt train --resume" sig.log
# A file written before the per-rank clock series existed (copied, the series deleted) resumes too.
mkdir -p older && cp results/signalled/run.h5 older/run.h5
"$PYTHON" -c 'import h5py, sys
with h5py.File(sys.argv[1], "r+") as f:
    del f["train/seconds_forward_ranks"], f["train/seconds_comm_ranks"]' older/run.h5
timeout 300 mpirun -np 1 "$BBT" train --resume older/run.h5 >older.log 2>&1
check "a file without the per-rank clocks resumes and finishes" test $? -eq 0
check "... and still has none" test "$(h5 older/run.h5 'int("seconds_comm_ranks" in f["train"])')" = 0
check "... and equals the uninterrupted run" same_run results/whole/run.h5 older/run.h5 0
# Resume with another rank count: allowed, and (one thread per rank) still the same run, bit for bit.
timeout 300 mpirun -np 3 "$BBT" train --resume results/signalled/run.h5 >sig-resumed.log 2>&1
check "resume after SIGUSR1 finishes" test $? -eq 0
check "signalled+resumed run equals the uninterrupted run" same_run results/whole/run.h5 results/signalled/run.h5 0
timeout 120 mpirun -np 1 "$BBT" train --resume results/signalled/run.h5 >again.log 2>&1
check "resuming a finished run is a no-op" test $? -eq 0
exit $fail
