#!/usr/bin/env bash
# README command (1)'s job: on the planted-prompt demo BBT must really learn (test accuracy >= 0.85
# and >= 0.25 above the zero prompt's), and the finished run file reads back with h5dump.
source "$(dirname "$0")/common.bash"
"$BBT" make-tiny-model --out demo-model --layers 2 --hidden 64 --heads 4 --intermediate 128 --seed 1 \
  --init-std 0.1 >/dev/null
timeout 600 mpirun -np 2 "$BBT" train --config "$BBT_SOURCE_DIR/configs/demo.ini" --model.path demo-model \
  --output.dir results --output.run_name demo | tee demo.log | grep -E "^(gen 150|test|initial)"
check "demo finishes" test "${PIPESTATUS[0]}" -eq 0
test_acc=$(h5dump -d /test/metric -y results/demo/run.h5 | awk '/DATA {/{getline; print $1}')
zero_acc=$(h5dump -d /test/initial_metric -y results/demo/run.h5 | awk '/DATA {/{getline; print $1}')
echo "test accuracy $test_acc, zero prompt $zero_acc"
check "test accuracy >= 0.85" awk "BEGIN{exit !($test_acc >= 0.85)}"
check "at least 0.25 above the zero prompt" awk "BEGIN{exit !($test_acc >= $zero_acc + 0.25)}"
check "h5dump reads the train series" bash -c "h5dump -d /train/best_loss results/demo/run.h5 | grep -q '( 150 )'"
exit $fail
