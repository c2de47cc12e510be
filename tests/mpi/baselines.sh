#!/usr/bin/env bash
# The paper's gradient-free baselines as methods of the same job (method.name = manual | icl |
# feature_mlp | feature_bilstm) on a tiny model and a task a token decides (the key word "good" or
# "bad" somewhere among filler words). Each method under mpirun -np 1, 2 and 3 gives the same bits;
# the feature classifiers learn the task; manual equals `bbt score` with no prompt; ICL records its
# demonstrations; bbt report lists every method.
source "$(dirname "$0")/common.bash"
make_token_task
methods="manual icl feature_mlp feature_bilstm"
for method in $methods; do
  for n in 1 2 3; do
    timeout 300 mpirun -np $n "$BBT" train --config c.ini --method.name $method \
      --output.run_name $method$n >$method$n.log 2>&1
    check "$method: mpirun -np $n finishes" test $? -eq 0
  done
done
for method in $methods; do
  check "$method: -np 1 and -np 2 agree bit for bit" same_bits results/${method}1/run.h5 results/${method}2/run.h5
  check "$method: -np 1 and -np 3 agree bit for bit" same_bits results/${method}1/run.h5 results/${method}3/run.h5
  check "$method: method attribute" test "$(h5 results/${method}2/run.h5 'f.attrs["method"]')" = $method
  check "$method: finished with a test metric and costs" test "$(h5 results/${method}2/run.h5 \
    'int(f["run/finished"][()] == 1 and np.isfinite(f["test/metric"][()]) and f["test/n_examples"][()] == 150
        and f["cost/server_bytes"][()] > 0 and f["cost/bytes_up_per_query"][()] > 0 and f["cost/bytes_down_per_query"][()] > 0
        and len(f["dev/metric"]) == 1 and "best/z" not in f and "train/loss" not in f
        and f["cost/peak_rss_bytes"].shape == (2,) and (f["cost/peak_rss_bytes"][()] > 2e7).all()
        and f["cost/bytes_up_total"][()] == f["cost/api_calls"][()] * f["cost/bytes_up_per_query"][()])')" = 1
  tuned=$(h5 results/${method}2/run.h5 'f["cost/tuned_parameters"][()]')
  case $method in
    feature_*) check "$method: tuned parameters are the classifier's" test "$tuned" -gt 0 ;;
    *) check "$method: no tuned parameters" test "$tuned" = 0 ;;
  esac
done
# The feature classifiers learn what a token decides; their epochs are recorded.
for method in feature_mlp feature_bilstm; do
  acc=$(h5 results/${method}1/run.h5 'f["test/metric"][()]')
  echo "  $method test accuracy $acc"
  check "$method reaches >= 0.9 test accuracy" "$PYTHON" -c "import sys; sys.exit(0 if $acc >= 0.9 else 1)"
  check "$method: per-epoch loss and dev metric" test "$(h5 results/${method}1/run.h5 \
    'int(len(f["train/classifier_loss"]) >= 2 and len(f["train/classifier_loss"]) == len(f["train/classifier_dev_metric"])
        and f["train/classifier_loss"][-1] < f["train/classifier_loss"][0] and f["cost/user_bytes"][()] > 0)')" = 1
done
check "feature-BiLSTM downloads every token, feature-MLP one vector per example" test "$(h5 results/feature_bilstm1/run.h5 \
  'int(f["cost/bytes_down_per_query"][()] > 3 * h5py.File("results/feature_mlp1/run.h5", "r")["cost/bytes_down_per_query"][()])')" = 1
# The classifier's training is deterministic for a seed and moves with it.
timeout 300 mpirun -np 2 "$BBT" train --config c.ini --method.name feature_mlp --classifier.seed 9 \
  --output.run_name mlp_seed9 >mlp_seed9.log 2>&1
check "feature_mlp: another classifier.seed gives another loss curve" test "$(h5 results/mlp_seed9/run.h5 \
  'int(not np.array_equal(f["train/classifier_loss"][()], h5py.File("results/feature_mlp1/run.h5", "r")["train/classifier_loss"][()]))')" = 1
# ICL: 4 demonstrations per dev and test input, distinct train positions, and the inputs differ.
check "icl: demonstrations recorded per input" test "$(h5 results/icl1/run.h5 \
  'int(f["method/icl_test_demonstrations"].shape == (150, 4) and f["method/icl_dev_demonstrations"].shape == (64, 4)
       and all(len(set(r)) == 4 and r.min() >= 0 and r.max() < 64 for r in f["method/icl_test_demonstrations"][()])
       and len({tuple(r) for r in f["method/icl_test_demonstrations"][()]}) > 100)')" = 1
# Manual prompt = bbt score with no prompt tokens on the same template: the test loss (mean cross-
# entropy of the logits) and accuracy recomputed from score's CSV agree within 1e-6.
"$BBT" score --model.path m --task.name custom --task.template '{prompt} {text} . It was <mask> .' \
  --task.verbalizer bad,good --data test.jsonl --prompt.n_tokens 0 --out manual.csv 2>/dev/null
check "bbt score with no prompt" test -s manual.csv
manual_equals_score() {
  "$PYTHON" - results/manual1/run.h5 manual.csv <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
d = np.loadtxt(sys.argv[2], delimiter=",", skiprows=1)
labels, logits = d[:, 1].astype(int), d[:, 2:]
m = logits.max(1, keepdims=True)
ce = -(logits[np.arange(len(labels)), labels] - (m[:, 0] + np.log(np.exp(logits - m).sum(1))))
acc = float((logits.argmax(1) == labels).mean())
print("  run loss", f["test/loss"][()], "score loss", ce.mean(), "run acc", f["test/accuracy"][()], "score acc", acc)
sys.exit(0 if abs(ce.mean() - f["test/loss"][()]) < 1e-6 and acc == f["test/accuracy"][()] else 1)
PY
}
check "manual prompt equals bbt score with no prompt" manual_equals_score
# bbt report: one row per run, the method named.
"$BBT" report results/manual1/run.h5 results/icl1/run.h5 results/feature_mlp1/run.h5 results/feature_bilstm1/run.h5 >report.txt
check "bbt report exits 0" test $? -eq 0
cat report.txt
for method in $methods; do
  check "bbt report lists $method" grep -q "^custom (acc)  *$method " report.txt
done
# The shipped configurations parse, one per method.
for method in $methods; do
  check "configs/sst2_$method.ini reads as method $method" bash -c \
    "\"$BBT\" train --config \"$BBT_SOURCE_DIR/configs/sst2_$method.ini\" --print-config | grep -qx 'name = $method'"
done
# bbt eval re-runs a baseline from its stored configuration: the same test metric, bit for bit.
for method in icl feature_mlp; do
  ev=$(timeout 120 mpirun -np 2 "$BBT" eval --run results/${method}1/run.h5 2>/dev/null)
  check "$method: bbt eval (2 ranks) reproduces /test/metric" same_value "$ev" results/${method}1/run.h5 test/metric
done
# A run killed during its fit (faked: a finished run's copy with its fit's records cut and the end
# unwritten) resumes from its start checkpoint and ends with the same bits.
for method in icl feature_bilstm; do
  cut_fit results/${method}1/run.h5 results/${method}_cut/run.h5
  check "$method: the cut file is a checkpoint" test "$("$BBT" report --state results/${method}_cut/run.h5)" = checkpoint
  timeout 300 mpirun -np 3 "$BBT" train --resume results/${method}_cut/run.h5 >${method}_cut.log 2>&1
  check "$method: resume finishes" test $? -eq 0
  check "$method: resumed run equals the uninterrupted one" same_bits results/${method}1/run.h5 results/${method}_cut/run.h5
done
# A finished run resumes to nothing; a run cut before its fit resumes from its start.
check "resume of a finished run is a no-op" bash -c "\"$BBT\" train --resume results/icl1/run.h5 | grep -q 'already finished'"
exit $fail
