#!/usr/bin/env bash
# A failing rank ends the whole job within seconds with that rank's error; nothing hangs and the
# run file stays readable. Bad input: one clear error line.
source "$(dirname "$0")/common.bash"
make_tiny m
write_config c.ini "$PWD/m" 2000

# A rank that fails mid-run (fault injection on rank 1 only).
start=$(date +%s)
timeout 120 mpirun -np 2 -x BBT_TEST_FAIL_ON_RANK=1 "$BBT" train --config c.ini --output.run_name fail >fail.log 2>&1
code=$?
check "job fails (exit $code, not a timeout)" test "$code" -ne 0 -a "$code" -ne 124
check "the failing rank's error is printed" grep -q "bbt: error: rank 1: injected failure" fail.log
check "ended within 60 s" test $(($(date +%s) - start)) -lt 60
check "run file readable after the failure" h5 results/fail/run.h5 'f.attrs["n_ranks"]'

# A rank whose model directory is wrong (MPMD: rank 1 gets another path) names itself.
timeout 120 mpirun -np 1 "$BBT" train --config c.ini --output.run_name mpmd : \
  -np 1 "$BBT" train --config c.ini --output.run_name mpmd --model.path "$PWD/nowhere" >mpmd.log 2>&1
check "a rank with a missing checkpoint ends the job" test $? -ne 0
check "its error names rank 1 and the path" grep -q "bbt: error: rank 1: .*nowhere" mpmd.log

# Configuration errors are reported once, before MPI starts, with exit code 2.
printf '[model]\npath = m\n[cma]\npopsize = 1\n' >bad.ini
out=$(mpirun -np 2 "$BBT" train --config bad.ini 2>&1)
check "bad popsize: one error line under mpirun" test "$(grep -c 'bbt: error:' <<<"$out")" -eq 1
check "the line names key and value" grep -q "invalid value '1' for cma.popsize" <<<"$out"

# An existing run is never overwritten.
timeout 120 mpirun -np 1 "$BBT" train --config c.ini --output.run_name once --cma.budget 20 >once.log 2>&1
out=$(mpirun -np 1 "$BBT" train --config c.ini --output.run_name once --cma.budget 20 2>&1)
check "second run with the same name refuses" grep -q "exists; continue it with bbt train --resume" <<<"$out"
exit $fail
