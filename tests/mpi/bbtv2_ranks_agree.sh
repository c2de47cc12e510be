#!/usr/bin/env bash
# BBTv2 (method.name = bbtv2) gives the same run whatever the rank count: -np 1, 2 and 3 agree bit
# for bit (the layer statistics are sharded over ranks and added in row order; candidates travel as
# one layer's z's). The run file holds its own series, the statistics and the dense kept prompt, and
# bbt eval re-scores it. CTest runs this once per OpenBLAS kernel set.
source "$(dirname "$0")/common.bash"
make_tiny m
write_config c.ini "$PWD/m" 130
printf '[method]\nname = bbtv2\n' >>c.ini
for n in 1 2 3; do
  timeout 300 mpirun -np $n "$BBT" train --config c.ini --output.run_name np$n >np$n.log 2>&1
  check "bbtv2: mpirun -np $n finishes" test $? -eq 0
done
r=results/np3/run.h5
# 2 layers x popsize 10: 6 whole rounds (120 of the 130 calls), one layer per generation in turn.
check "12 generations, layers 0,1,0,1,..." test "$(h5 $r 'list(f["train/layer"][()])')" = "[0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1]"
check "120 API calls, stopped by the rounds (budget)" test "$(h5 $r \
  'int(f["train/api_calls"][-1] == 120 and f["run/stop_reason"][()] == 0 and f["run/finished"][()] == 1)')" = 1
check "per-layer sigma and best loss [12, 2]" test "$(h5 $r \
  'f["train/layer_sigma"].shape == (12, 2) and f["train/layer_best_loss"].shape == (12, 2)')" = True
check "an untuned layer keeps sigma0; the best loss never rises" test "$(h5 $r \
  'int(f["train/layer_sigma"][0, 1] == 1.0 and (np.diff(f["train/layer_best_loss"][1:], axis=0) <= 0).all())')" = 1
check "layer statistics [2, 2]: embeddings' std, then layer 1's clipped input" test "$(h5 $r \
  'int(f["bbtv2/layer_stats"].shape == (2, 2) and f["bbtv2/layer_stats"][0, 0] == 0 and (f["bbtv2/layer_stats"][:, 1] > 0).all())')" = 1
check "kept prompt: 2 z's of 20 and dense [2, 5, 32]" test "$(h5 $r \
  'int(f["best/z"].shape == (40,) and f["best/prompt"].shape == (2, 5, 32) and np.abs(f["best/prompt"][()]).max() > 0)')" = 1
check "-np 1 and -np 2 agree" same_run results/np1/run.h5 results/np2/run.h5 0
check "-np 1 and -np 3 agree" same_run results/np1/run.h5 results/np3/run.h5 0
check "layer statistics agree across rank counts" test "$(h5 results/np1/run.h5 'f["bbtv2/layer_stats"][()].tobytes().hex()')" = \
  "$(h5 $r 'f["bbtv2/layer_stats"][()].tobytes().hex()')"
check "the same dense prompt across rank counts" test "$(h5 results/np1/run.h5 'f["best/prompt"][()].tobytes().hex()')" = \
  "$(h5 $r 'f["best/prompt"][()].tobytes().hex()')"
check "workers receive one layer's z's, not dense prompts" test "$(h5 $r \
  'int((f["train/bytes_received"][:, 1] < 8 * (10 * 20 + 2 * 20 + 10)).all())')" = 1
ev=$(timeout 120 mpirun -np 2 "$BBT" eval --run $r)
check "bbt eval reproduces /test/metric of a bbtv2 run" same_value "$ev" $r test/metric
# Bad configurations: one line, exit 2.
out=$("$BBT" train --config c.ini --cma.budget 15 --output.run_name small 2>&1 >/dev/null); code=$?
check "a budget under one round is refused (exit 2, one line)" test "$code" -eq 2 -a "$(printf '%s\n' "$out" | wc -l)" -eq 1
check "... naming the key" grep -q "cma.budget = 15" <<<"$out"
out=$("$BBT" train --config c.ini --prompt.mode cat --output.run_name cat 2>&1 >/dev/null); code=$?
check "bbtv2 with prompt.mode cat is refused (exit 2)" test "$code" -eq 2
check "... naming prompt.mode" grep -q "prompt.mode = add" <<<"$out"
exit $fail
