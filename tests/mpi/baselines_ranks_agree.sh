#!/usr/bin/env bash
# The baselines' claim of the same bits for any rank count, under each OpenBLAS kernel set (CTest
# runs this once per set; tests/mpi/baselines.sh covers every method and rank count once): ICL's
# logits and feature-BiLSTM's per-token features come from fixed chunks, so -np 1 and -np 3 agree;
# so do BBT-Adam's gradient sums (tests/mpi/bbt_adam.sh covers -np 1/2/3 once).
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
# BBT-Adam's gradient requests (each chunk's A^T grad_p, added on rank 0 in chunk order), add mode.
make_tiny am
write_config a.ini "$PWD/am" 400
printf '[method]\nname = bbt_adam\n[optim]\nsteps = 12\nbatch_size = 1000\nchunk_rows = 4\n' >>a.ini
for n in 1 3; do
  timeout 300 mpirun -np $n "$BBT" train --config a.ini --eval.every 6 --output.run_name adam$n >adam$n.log 2>&1
  check "bbt_adam: mpirun -np $n finishes" test $? -eq 0
done
check "bbt_adam: -np 1 and -np 3 agree bit for bit" same_bits results/adam1/run.h5 results/adam3/run.h5
exit $fail
