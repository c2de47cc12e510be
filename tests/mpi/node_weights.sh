#!/usr/bin/env bash
# One copy of the weights per node on CPU (issue 20): the ranks of a node share one converted copy
# (an MPI shared-memory window; cluster::node_shared_weights). Checked by what the processes use:
# the run file's per-rank PSS (/cost/pss_bytes, pages shared between processes divided among them)
# adds up, over -np 2, to one copy of the weights less when the window is shared than when it is
# not (BBT_TEST_NO_SHARED_WINDOW=1: the window fails as if
# /dev/shm had no room; one warning line, every rank loads its own copy). All three runs agree bit
# for bit. A checkpoint with a NaN under sharing ends the job with the first rank's error line.
source "$(dirname "$0")/common.bash"
# Weights of ~210 MB (GPT-2's vocabulary x 1024), so that they dominate each rank's own memory
# (~100 MB, varying by tens of MB between runs).
"$BBT" make-tiny-model --out big --layers 1 --hidden 1024 --heads 16 --intermediate 1024 --seed 5 \
  --init-std 0.05 >/dev/null
W=$(stat -c %s big/model.safetensors)
write_config c.ini "$PWD/big" 20
short=(--task.planted_pool 200 --task.planted_test 40 --eval.every 10)
timeout 300 mpirun -np 1 "$BBT" train --config c.ini "${short[@]}" --output.run_name np1 >np1.log 2>&1
check "-np 1 finishes" test $? -eq 0
timeout 300 mpirun -np 2 "$BBT" train --config c.ini "${short[@]}" --output.run_name np2 >np2.log 2>&1
check "-np 2 finishes" test $? -eq 0
timeout 300 mpirun -np 2 -x BBT_TEST_NO_SHARED_WINDOW=1 "$BBT" train --config c.ini "${short[@]}" \
  --output.run_name own >own.log 2>&1
check "-np 2 without the window finishes" test $? -eq 0
check "the log says the node's 2 ranks share one copy" grep -q "one copy shared by this node's 2 ranks" np2.log
check "-np 1 holds its own copy" grep -q "one copy per rank" np1.log
check "no window: one warning line, then a copy per rank" test "$(grep -c '^bbt: warning: rank 0: cannot share one copy of the weights' own.log)" -eq 1 -a \
  "$(grep -c 'one copy per rank' own.log)" -eq 1
check "-np 1 and -np 2 (shared) agree" same_run results/np1/run.h5 results/np2/run.h5 0
check "-np 1 and -np 2 (own copies) agree" same_run results/np1/run.h5 results/own/run.h5 0
pss() { h5 "results/$1/run.h5" 'int(f["cost/pss_bytes"][()].sum())'; }
p1=$(pss np1) p2=$(pss np2) own=$(pss own)
echo "weights file $W bytes; total PSS: -np 1 $p1, -np 2 shared $p2, -np 2 own copies $own"
check "PSS recorded for every rank" test "$(h5 results/np2/run.h5 'int(f["cost/pss_bytes"].shape == (2,) and (f["cost/pss_bytes"][()] > 1e7).all())')" = 1
# Each rank also holds ~100 MB of its own (libtorch, MPI, buffers): what sharing must save is the
# second copy of the weights.
check "-np 2 own copies: total PSS > -np 1's + 0.8 x the weights" test $((own - p1)) -gt $((W * 8 / 10))
check "-np 2 sharing: total PSS < own copies' - 0.6 x the weights" test $((own - p2)) -gt $((W * 6 / 10))
check "-np 2 sharing: total PSS < -np 1's + 0.8 x the weights" test $((p2 - p1)) -lt $((W * 8 / 10))

# A NaN in the checkpoint: the filling rank names it; the job ends (no hang), exit 1.
cp -r big nan
"$PYTHON" - nan/model.safetensors <<'PY'
import json, struct, sys
path = sys.argv[1]
with open(path, "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    info = json.loads(f.read(n))["roberta.encoder.layer.0.output.dense.bias"]
    f.seek(8 + n + info["data_offsets"][0])
    f.write(struct.pack("<f", float("nan")))
PY
timeout 120 mpirun -np 2 "$BBT" train --config c.ini "${short[@]}" --model.path "$PWD/nan" --output.run_name nan \
  >nan.log 2>&1
code=$?
check "NaN weights under sharing: exit 1 (got $code)" test $code -eq 1
check "... the first rank's line names the tensor" grep -q "^bbt: error: rank 0: .*layer.0.output.dense.bias' holds 1 non-finite value" nan.log
rm -rf big nan
exit $fail
