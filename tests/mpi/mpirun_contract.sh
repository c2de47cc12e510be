#!/usr/bin/env bash
# What plain-mpirun users get (README "Under mpirun"): with the Open MPI setting bbt's scripts use,
# an error is bbt's one line and nothing else; SIGUSR1 to mpirun checkpoints and exits 75; SIGTERM to
# mpirun checkpoints too but mpirun exits 1 (Open MPI's choice, documented).
source "$(dirname "$0")/common.bash"
make_tiny m
write_config c.ini "$PWD/m" 100000

for script in jobs/local.sh scripts/demo.sh; do
  check "$script keeps Open MPI's banners out (orte_execute_quiet)" \
    grep -q '^export OMPI_MCA_orte_execute_quiet=${OMPI_MCA_orte_execute_quiet:-1}$' "$BBT_SOURCE_DIR/$script"
done
export OMPI_MCA_orte_execute_quiet=1

# Errors: exit 1 and bbt's line alone, with one rank (exit path) and two (MPI_Abort path).
for np in 1 2; do
  err=$(timeout 120 mpirun -np $np "$BBT" train --resume nowhere.h5 2>&1 >/dev/null)
  code=$?
  check "$np rank(s): error exits 1 (got $code)" test "$code" -eq 1
  check "$np rank(s): stderr is one line: $err" \
    test "$err" = "bbt: error: rank 0: run file nowhere.h5: no such file"
done

# SIGUSR1 to mpirun: forwarded to every rank, checkpoint, exit 75, nothing on stderr.
mpirun -np 2 "$BBT" train --config c.ini --output.run_name usr1 >usr1.log 2>usr1.err &
pid=$!
wait_rows results/usr1/run.h5 5
kill -USR1 $pid
wait $pid
code=$?
check "SIGUSR1 to mpirun: exit 75 (got $code)" test "$code" -eq 75
check "... stderr empty" test ! -s usr1.err
check "... checkpointed" test "$("$BBT" report --state results/usr1/run.h5)" = checkpoint

# SIGTERM to mpirun: ranks checkpoint, mpirun exits 1 (README says so and how to get 75).
mpirun -np 2 "$BBT" train --config c.ini --output.run_name term >term.log 2>term.err &
pid=$!
wait_rows results/term/run.h5 5
kill -TERM $pid
wait $pid
code=$?
check "SIGTERM to mpirun: exit 1 as documented (got $code)" test "$code" -eq 1
check "... checkpointed all the same" test "$("$BBT" report --state results/term/run.h5)" = checkpoint
check "... README documents both" grep -q 'SIGTERM (or Ctrl-C) sent to `mpirun` itself' "$BBT_SOURCE_DIR/README.md"
exit $fail
