#!/usr/bin/env bash
# Issue 14's weak spots at the start and end of a run, each one line on stderr:
# - prompt.intrinsic_dim far beyond the memory the process may use (ulimit -v): refused before
#   anything heavy, no run directory left behind (was: std::bad_alloc and an empty directory);
# - a model with too few position embeddings for the task's inputs: the message names the model
#   file and its limit;
# - a run whose every candidate is non-finite for several generations ends with exit 1 and says
#   so, instead of a finished run.
set -u
: "${BBT:?}" "${BBT_SCRATCH:?}" "${BBT_SOURCE_DIR:?}"
rm -rf "$BBT_SCRATCH" && mkdir -p "$BBT_SCRATCH" && cd "$BBT_SCRATCH" || exit 1
fail=0
check() { local what=$1; shift; if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi; }
"$BBT" make-tiny-model --out m --layers 2 --hidden 32 --heads 4 --intermediate 64 --seed 3 --init-std 0.1 >/dev/null
args=(train --model.threads 1 --task.name planted --task.k_shot 8 --task.planted_pool 100
  --task.planted_test 50 --prompt.n_tokens 5 --prompt.alpha 100 --cma.popsize 6
  --cma.budget 120 --eval.every 12 --output.dir results)

(ulimit -v 8000000 && exec "$BBT" "${args[@]}" --model.path m --prompt.intrinsic_dim 100000 --output.run_name big) >big.log 2>big.err
code=$?
check "intrinsic_dim 100000 under ulimit -v 8 GB: exit 2 (got $code)" test "$code" -eq 2
check "... one line naming the key and the memory: $(cat big.err)" test "$(wc -l <big.err)" -eq 1 -a \
  "$(grep -c 'prompt.intrinsic_dim = 100000 needs about .* GiB .* but this process may allocate' big.err)" -eq 1
check "... no run directory left behind" test ! -e results/big

cp -r m short
/usr/bin/python3 "$BBT_SOURCE_DIR/tests/cli/shrink_positions.py" short 16
"$BBT" "${args[@]}" --model.path short --prompt.intrinsic_dim 10 --output.run_name short >short.log 2>short.err
code=$?
check "16 position embeddings: exit non-zero (got $code)" test "$code" -ne 0
check "... one line naming the model and its limit: $(cat short.err)" test "$(wc -l <short.err)" -eq 1 -a \
  "$(grep -c 'short.*max_position_embeddings' short.err)" -eq 1

# An sst2-format file (the planted task itself needs finite outputs to plant its labels) and a
# projection scale that overflows float32 for every candidate (z = 0 stays finite).
{ echo "sentence	label"; for i in $(seq 40); do echo "a fine film number $i	$((i % 2))"; done; } >sst.tsv
"$BBT" train --model.path m --model.threads 1 --task.name sst2 --task.k_shot 8 --task.train_file sst.tsv \
  --task.test_file sst.tsv --prompt.n_tokens 5 --prompt.intrinsic_dim 10 --prompt.alpha 1e30 --cma.popsize 6 \
  --cma.budget 120 --eval.every 12 --output.dir results --output.run_name nan >nan.log 2>nan.err
code=$?
check "every candidate non-finite: exit 1 (got $code)" test "$code" -eq 1
check "... one line saying so: $(cat nan.err)" test "$(wc -l <nan.err)" -eq 1 -a \
  "$(grep -c "generations 0..4: every candidate's loss was NaN or infinite" nan.err)" -eq 1
check "... and the run is not marked finished" test "$(/usr/bin/python3 -c '
import h5py; print(int(h5py.File("results/nan/run.h5", "r", swmr=True)["run/finished"][()]))')" = 0
exit $fail
