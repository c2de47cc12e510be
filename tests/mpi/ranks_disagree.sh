#!/usr/bin/env bash
# Issue 14, defect 5: every rank must run the same configuration on the same weights. MPMD launches
# where rank 1 gets another --cma.seed / --prompt.alpha, or another model directory with the same
# shapes and other weights, end at start in one line naming the ranks; a copy of the same model in
# another directory is the same model.
source "$(dirname "$0")/common.bash"
export OMPI_MCA_orte_execute_quiet=1
make_tiny m
cp -r m mcopy
"$BBT" make-tiny-model --out m2 --layers 2 --hidden 32 --heads 4 --intermediate 64 --seed 4 --init-std 0.1 >/dev/null
write_config c.ini "$PWD/m" 60

mpmd() {  # mpmd NAME ARGS-OF-RANK-1...: rank 0 plain, rank 1 with ARGS
  local name=$1
  shift
  timeout 120 mpirun -np 1 "$BBT" train --config c.ini --output.run_name $name : \
    -np 1 "$BBT" train --config c.ini --output.run_name $name "$@" >$name.log 2>$name.err
}
mpmd seed --cma.seed 7
code=$?
check "another cma.seed on rank 1: exit 2 (got $code)" test "$code" -eq 2
check "... one line naming rank 1 and the key: $(cat seed.err)" test "$(wc -l <seed.err)" -eq 1 -a \
  "$(grep -c 'ranks disagree on the configuration: rank 1 differs from rank 0 in cma.seed (rank 0: 42);' seed.err)" -eq 1
check "... no run file left" test ! -e results/seed/run.h5
mpmd alpha --prompt.alpha 50
check "another prompt.alpha on rank 1: named: $(cat alpha.err)" grep -q 'rank 1 differs from rank 0 in prompt.alpha (rank 0: 1e+02)' alpha.err
mpmd weights --model.path "$PWD/m2"
code=$?
check "other weights on rank 1: exit 1 (got $code)" test "$code" -eq 1
check "... one line naming rank 1: $(cat weights.err)" test "$(wc -l <weights.err)" -eq 1 -a \
  "$(grep -c 'ranks disagree on the model: rank 1 loaded other weights than rank 0' weights.err)" -eq 1
mpmd copy --model.path "$PWD/mcopy" --model.threads 1
code=$?
check "a copy of the model (another path, same weights) runs (exit $code)" test "$code" -eq 0
exit $fail
