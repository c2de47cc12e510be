#!/usr/bin/env bash
# Model tuning (method.name = model_tuning: every weight trained) gives the same bits for any rank
# count: each step's mini-batch in fixed chunks, their float32 gradients added on rank 0 in chunk
# order, and every rank applying the same AdamW update to its own copy of the weights (which never
# travel). Run once per OpenBLAS kernel set (tests/CMakeLists.txt). -np 1, 2 and 3 compared over
# every dataset of the run file, /method/weights_fingerprint (the kept and final weights) included.
source "$(dirname "$0")/common.bash"
make_tiny m
write_config c.ini "$PWD/m" 400
cat >>c.ini <<INI
[method]
name = model_tuning
[optim]
lr = 0.001
steps = 12
batch_size = 16
chunk_rows = 4
INI
sed -i 's/^every = 40$/every = 4/' c.ini
for n in 1 2 3; do
  timeout 300 mpirun -np $n "$BBT" train --config c.ini --output.run_name mt$n >mt$n.log 2>&1
  check "mpirun -np $n finishes" test $? -eq 0
done
check "-np 1 and -np 2 agree bit for bit" same_bits results/mt1/run.h5 results/mt2/run.h5
check "-np 1 and -np 3 agree bit for bit" same_bits results/mt1/run.h5 results/mt3/run.h5
check "every rank's weights checked equal at the end (the log names the kept fingerprint)" \
  grep -q 'kept weights [0-9a-f]\{16\} on all 3 rank(s)' mt3.log
check "the kept and final weights' fingerprints are recorded; the gradients are not zero" test "$(h5 results/mt3/run.h5 \
  'int(len(f["method/weights_fingerprint"][()]) == 2 and np.all(f["train/tuning_grad_norm"][()] > 0))')" = 1
exit $fail
