#!/usr/bin/env bash
# `bbt train --resume RUN.h5` while the job that writes RUN.h5 still runs is refused in one line
# naming host and pid of the live writer, and leaves the file alone; once that job is SIGKILLed the
# same command resumes with no manual step.
source "$(dirname "$0")/common.bash"
export OMPI_MCA_orte_execute_quiet=1  # as bbt's scripts set it: no Open MPI banners
make_tiny m
write_config c.ini "$PWD/m" 4000
run=results/live/run.h5

mpirun -np 1 "$BBT" train --config c.ini --output.run_name live >live.log 2>&1 &
mpirun_pid=$!
check "the first job writes" wait_rows $run 7
writer=$(pgrep -P "$mpirun_pid" -x "$(basename "$BBT")")
check "the first job's rank found (pid '$writer')" test -n "$writer"

timeout 120 mpirun -np 1 "$BBT" train --resume $run >second.log 2>second.err
code=$?
cat second.err
check "stderr is one line" test "$(wc -l <second.err)" -eq 1
check "second writer refused (exit $code)" test "$code" -ne 0 -a "$code" -ne 124
check "one error line naming host and pid of the live writer" test "$(grep -c \
  "bbt: error: rank 0: run file .*live/run.h5 is being written by another job (host $(hostname), pid $writer)" \
  second.err)" -eq 1
check "the first job still runs" kill -0 "$writer"
n1=$(rows $run)
sleep 1
check "... and still writes ($n1 -> $(rows $run) generations)" test "$(rows $run)" -gt "$n1"
check "the command line recorded is the first job's" \
  test "$(h5 $run 'f.attrs["command_line"]' | grep -c -- --resume)" -eq 0

kill -9 "$writer"
wait "$mpirun_pid" 2>/dev/null
check "the killed job left its lock file" test -f $run.lock
timeout 300 mpirun -np 1 "$BBT" train --resume $run >resumed.log 2>&1
code=$?
check "after SIGKILL the same resume runs (exit $code)" test "$code" -eq 0
check "... to the end" test "$(h5 $run 'int(f["run/finished"][()])')" = 1
check "... and removes the lock file" test ! -e $run.lock
exit $fail
