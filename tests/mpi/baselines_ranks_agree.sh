#!/usr/bin/env bash
# The baselines' claim of the same bits for any rank count, under each OpenBLAS kernel set (CTest
# runs this once per set; tests/mpi/baselines.sh covers every method and rank count once): ICL's
# logits and feature-BiLSTM's per-token features come from fixed chunks, so -np 1 and -np 3 agree.
source "$(dirname "$0")/common.bash"
make_token_task
for method in icl feature_bilstm; do
  for n in 1 3; do
    timeout 300 mpirun -np $n "$BBT" train --config c.ini --method.name $method --classifier.epochs 60 \
      --output.run_name $method$n >$method$n.log 2>&1
    check "$method: mpirun -np $n finishes" test $? -eq 0
  done
  check "$method: -np 1 and -np 3 agree bit for bit" same_bits results/${method}1/run.h5 results/${method}3/run.h5
done
exit $fail
