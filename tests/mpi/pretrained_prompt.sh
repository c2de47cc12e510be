#!/usr/bin/env bash
# The paper's pre-trained prompt (§3.4) end to end on planted tasks: prompt tuning on a source task
# over its whole train set (task.k_shot = 0), then its run file as p0 (prompt.init_file) for BBT in
# cat mode on a target task that shares the hidden prompt (the same planted_seed, other sentences:
# planted_text_seed). BBT with that p0 must beat p0 = 0 at the same budget on the target's test set,
# over three k-shot splits; and the target task itself must not depend on p0 (its labels are the hidden
# prompt's alone).
source "$(dirname "$0")/common.bash"
make_tiny m
write_config c.ini "$PWD/m" 200
sed -i 's/^\[prompt\]$/[prompt]\nmode = cat/' c.ini
cat >>c.ini <<INI
[optim]
steps = 150
batch_size = 16
chunk_rows = 8
INI

# Source: prompt tuning on all 400 pool rows (no dev: the last step is kept).
timeout 300 mpirun -np 2 "$BBT" train --config c.ini --method.name prompt_tuning --task.k_shot 0 \
  --task.planted_text_seed 101 --output.run_name source >source.log 2>&1
check "source: prompt tuning on the whole train set finishes" test $? -eq 0
check "source: 400 train rows, no dev, 150 steps, kept prompt [5, 32]" test "$(h5 results/source/run.h5 \
  'int(len(f["data/train_index"]) == 400 and len(f["data/dev_index"]) == 0 and len(f["train/tuning_loss"]) == 150
       and f["best/prompt"].shape == (5, 32))')" = 1

# Target: BBT with p0 = the source's run file against p0 = 0, three k-shot splits, the same budget
# (cma.seed stays: it seeds the projection A, and with it the hidden prompt A z*).
for s in 1 2 3; do
  for p0 in with without; do
    extra=()
    [[ $p0 == with ]] && extra=(--prompt.init_file "$PWD/results/source/run.h5")
    timeout 300 "$BBT" train --config c.ini --task.planted_text_seed 202 --task.split_seed $s "${extra[@]}" \
      --output.run_name ${p0}_$s >${p0}_$s.log 2>&1
    check "target split $s, p0 $p0: finishes" test $? -eq 0
  done
done
draws() { sed -n 's/.*z\* accepted after \([0-9]*\) draw.*/\1/p' "$1"; }
check "source and target share the hidden prompt (the same z* draw)" test "$(draws source.log)" = "$(draws with_1.log)"
check "the target's labels do not depend on p0" "$PYTHON" -c "import sys, h5py, numpy as np
a = h5py.File('results/with_1/run.h5', 'r'); b = h5py.File('results/without_1/run.h5', 'r')
sys.exit(0 if np.array_equal(a['data/train_index'][()], b['data/train_index'][()])
         and np.array_equal(a['data/dev_index'][()], b['data/dev_index'][()])
         and a['test/n_examples'][()] == b['test/n_examples'][()] else 1)"
"$PYTHON" - <<'PY' >margin.txt
import h5py, numpy as np
t = {p: [h5py.File(f"results/{p}_{s}/run.h5", "r")["test/metric"][()] for s in (1, 2, 3)] for p in ("with", "without")}
print(np.mean(t["with"]) - np.mean(t["without"]), min(t["with"]) - max(t["without"]), t["with"], t["without"])
PY
echo "  test accuracy: mean(with p0) - mean(p0 = 0), worst with - best without, values: $(cat margin.txt)"
check "BBT with the pre-trained p0 beats p0 = 0 by at least 0.05 in mean test accuracy, and on every split" \
  "$PYTHON" -c "import sys; m = open('margin.txt').read().split(); sys.exit(0 if float(m[0]) >= 0.05 and float(m[1]) > 0 else 1)"

# The real source task's path: GLUE MNLI TSVs (train 12 columns, dev 16), the whole train file as
# train and task.dev_file as dev, prompt tuning on 2 ranks.
mkdir -p mnli
"$PYTHON" - <<'PY'
import random
cols = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
        "sentence2_parse\tsentence1\tsentence2")
gold = ["entailment", "neutral", "contradiction"]
words = "the a cat dog sat ran home park it was is not very good bad big small".split()
r = random.Random(5)
def pair(): return " ".join(r.choices(words, k=6)) + ".", " ".join(r.choices(words, k=4)) + "."
with open("mnli/train.tsv", "w") as f:
    f.write(cols + "\tlabel1\tgold_label\n")
    for i in range(60):
        a, b = pair(); g = gold[i % 3]
        f.write(f"{i}\t{i}\t{i}n\tfiction\t( x )\t( y )\t(ROOT x)\t(ROOT y)\t{a}\t{b}\t{g}\t{g if i != 7 else '-'}\n")
for name, n in (("dev_mismatched.tsv", 12), ("dev_matched.tsv", 15)):
    with open("mnli/" + name, "w") as f:
        f.write(cols + "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n")
        for i in range(n):
            a, b = pair(); g = gold[i % 3]
            f.write(f"{i}\t{i}\t{i}n\tslate\tx\ty\tx\ty\t{a}\t{b}\t{g}\t{g}\t{g}\t{g}\t{g}\t{g}\n")
PY
cat >mnli.ini <<INI
[method]
name = prompt_tuning
[model]
path = $PWD/m
threads = 1
[task]
name = mnli
data_dir = $PWD/mnli
k_shot = 0
dev_file = dev_mismatched.tsv
[prompt]
n_tokens = 5
mode = cat
[optim]
steps = 4
batch_size = 16
chunk_rows = 4
[eval]
every = 2
[output]
dir = $BBT_SCRATCH/results
run_name = mnli
INI
timeout 300 mpirun -np 2 "$BBT" train --config mnli.ini >mnli.log 2>&1
check "MNLI: prompt tuning over the whole train file finishes" test $? -eq 0
check "MNLI: 59 train rows in file order (one '-' dropped), 12 dev rows from dev_file, 15 test rows" \
  test "$(h5 results/mnli/run.h5 'int(list(f["data/train_index"][()]) == list(range(59))
    and len(f["data/dev_index"]) == 0 and f["test/n_examples"][()] == 15
    and int(np.isfinite(f["train/tuning_dev_metric"][()]).sum()) == 2)')" = 1
check "MNLI: the log names the dev file" grep -q "whole file -> 59 train / 12 dev (.*dev_mismatched.tsv)" mnli.log
exit $fail
