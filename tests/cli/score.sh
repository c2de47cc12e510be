#!/usr/bin/env bash
# `bbt score`: CSV layout, zero prompt == no prompt, a prompt changes the logits, thread-count
# invariance, cat mode, a custom task, and one-line errors.
set -u
fail=0
tmp=${BBT_SCRATCH:-$(mktemp -d)}
rm -rf "$tmp"; mkdir -p "$tmp"
PY=${PYTHON:-/usr/bin/python3}

"$BBT" make-tiny-model --out "$tmp/m" --layers 2 --hidden 32 --heads 4 --intermediate 64 --seed 3 \
  --init-std 0.1 >/dev/null || { echo "FAIL: make-tiny-model"; exit 1; }

printf 'sentence\tlabel\n' >"$tmp/dev.tsv"
printf 'a gripping , funny film .\t1\n' >>"$tmp/dev.tsv"
printf 'dull and lifeless from start to end\t0\n' >>"$tmp/dev.tsv"
printf 'the best thing i saw all year\t1\n' >>"$tmp/dev.tsv"
printf 'an utter mess\t0\n' >>"$tmp/dev.tsv"
printf 'warm , wise and very human\t1\n' >>"$tmp/dev.tsv"

"$PY" - "$tmp" <<'EOF' || { echo "FAIL: writing .npy files"; exit 1; }
import sys, numpy as np
d = sys.argv[1]
np.save(f"{d}/zero.npy", np.zeros((50, 32), np.float32))
np.save(f"{d}/rand.npy", np.random.default_rng(1).normal(0, 1.0, (50, 32)).astype(np.float32))
np.save(f"{d}/cat.npy", np.random.default_rng(2).normal(0, 1.0, (5, 32)).astype(np.float32))
np.save(f"{d}/wrong.npy", np.zeros((50, 16), np.float32))
EOF

score() { "$BBT" score --model "$tmp/m" --task sst2 --data "$tmp/dev.tsv" "$@" 2>>"$tmp/stderr.log"; }
score --out "$tmp/none.csv" --threads 1 || { echo "FAIL: score without prompt"; fail=1; }
score --out "$tmp/zero.csv" --prompt-npy "$tmp/zero.npy" --threads 1 || { echo "FAIL: zero prompt"; fail=1; }
score --out "$tmp/rand.csv" --prompt-npy "$tmp/rand.npy" --threads 1 || { echo "FAIL: random prompt"; fail=1; }
score --out "$tmp/rand2.csv" --prompt-npy "$tmp/rand.npy" --threads 2 || { echo "FAIL: 2 threads"; fail=1; }
score --out "$tmp/cat.csv" --prompt-npy "$tmp/cat.npy" --prompt-mode cat || { echo "FAIL: cat mode"; fail=1; }

printf '{"text": "a gripping , funny film .", "label": 1}\n{"text": "an utter mess", "label": 0}\n' >"$tmp/c.jsonl"
"$BBT" score --model "$tmp/m" --task custom --template '{prompt} {text} It was <mask> .' --verbalizer 'bad,great' \
  --data "$tmp/c.jsonl" --out "$tmp/custom.csv" --n-prompt-tokens 5 2>>"$tmp/stderr.log" ||
  { echo "FAIL: custom task"; fail=1; }

"$PY" - "$tmp" <<'EOF' || fail=1
import csv, sys
import numpy as np
d = sys.argv[1]
def load(name):
    with open(f"{d}/{name}") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]
bad = 0
def check(cond, msg):
    global bad
    print(("ok: " if cond else "FAIL: ") + msg)
    bad |= not cond
h, rows = load("none.csv")
check(h == ["index", "label", "logit_0", "logit_1"], f"header {h}")
check([r[0] for r in rows] == ["0", "1", "2", "3", "4"], "indices 0..4")
check([r[1] for r in rows] == ["1", "0", "1", "0", "1"], "labels from the file")
logits = {n: np.array([[float(x) for x in r[2:]] for r in load(n)[1]]) for n in
          ["none.csv", "zero.csv", "rand.csv", "rand2.csv", "cat.csv"]}
check(all(np.isfinite(v).all() and v.shape == (5, 2) for v in logits.values()), "5 x 2 finite logits each")
check(np.array_equal(logits["none.csv"], logits["zero.csv"]), "zero .npy == no prompt (bitwise)")
diff = np.abs(logits["rand.csv"] - logits["none.csv"]).max()
check(diff > 1e-3, f"a random prompt changes the logits (max diff {diff:.3g})")
diff = np.abs(logits["rand.csv"] - logits["rand2.csv"]).max()
check(diff <= 1e-5, f"--threads 1 vs 2 agree (max diff {diff:.3g})")
diff = np.abs(logits["cat.csv"] - logits["none.csv"]).max()
check(diff > 1e-3, f"cat-mode prompt changes the logits (max diff {diff:.3g})")
# %.9g round-trips float32: parsing a value as float32 and printing it again gives the same text.
texts = [x for r in load("rand.csv")[1] for x in r[2:]]
check(all("%.9g" % np.float32(x) == x for x in texts), "logits round-trip through float32")
h, rows = load("custom.csv")
check(h[:2] == ["index", "label"] and len(rows) == 2 and [r[1] for r in rows] == ["1", "0"], "custom task rows")
sys.exit(bad)
EOF

expect() {  # expect CODE PATTERN -- command...
  local code=$1 pattern=$2; shift 3
  local out rc
  out=$("$@" 2>&1 >/dev/null); rc=$?
  if [[ $rc -ne $code ]]; then echo "FAIL (exit $rc, wanted $code): $* -> $out"; fail=1; return; fi
  if [[ $(printf '%s\n' "$out" | wc -l) -ne 1 ]]; then echo "FAIL (not one line): $* -> $out"; fail=1; return; fi
  if ! grep -qF -- "$pattern" <<<"$out"; then echo "FAIL (no '$pattern'): $* -> $out"; fail=1; return; fi
  echo "ok: $out"
}
base=("$BBT" score --model "$tmp/m" --task sst2 --data "$tmp/dev.tsv")
expect 2 "option '--out' is required" -- "${base[@]}"
expect 2 "$tmp/wrong.npy" -- "${base[@]}" --prompt-npy "$tmp/wrong.npy" --out "$tmp/x.csv"
expect 2 "--n-prompt-tokens is 7" -- "${base[@]}" --prompt-npy "$tmp/zero.npy" --n-prompt-tokens 7 --out "$tmp/x.csv"
expect 1 "$tmp/missing.tsv" -- "$BBT" score --model "$tmp/m" --task sst2 --data "$tmp/missing.tsv" --out "$tmp/x.csv"
expect 1 "$tmp/missing.npy" -- "${base[@]}" --prompt-npy "$tmp/missing.npy" --out "$tmp/x.csv"
expect 2 "sst3" -- "$BBT" score --model "$tmp/m" --task sst3 --data "$tmp/dev.tsv" --out "$tmp/x.csv"
expect 2 "--prompt-mode" -- "${base[@]}" --prompt-mode glue --out "$tmp/x.csv"
expect 1 "$tmp/nodir/x.csv" -- "${base[@]}" --out "$tmp/nodir/x.csv"
printf 'sentence\tlabel\nfine film\t7\n' >"$tmp/badlabel.tsv"
expect 1 "$tmp/badlabel.tsv" -- "$BBT" score --model "$tmp/m" --task sst2 --data "$tmp/badlabel.tsv" --out "$tmp/x.csv"

# The task pipeline's length rule, as in `bbt train`: an example over 512 ids is dropped and counted
# in both prompt modes (the prompt's rows are not counted in cat mode), the others scored in order.
{ printf 'sentence\tlabel\nshort one\t1\n'; printf 'word %.0s' $(seq 600); printf '\t0\nlast one\t0\n'; } >"$tmp/long.tsv"
for mode in add cat; do
  "$BBT" score --model "$tmp/m" --task sst2 --data "$tmp/long.tsv" --prompt-mode $mode --n-prompt-tokens 5 \
    --out "$tmp/long-$mode.csv" 2>"$tmp/long-$mode.err"
  if grep -q "2 example(s) .*; dropped 1 (longer than 512 tokens)" "$tmp/long-$mode.err" &&
     [ "$(cut -d, -f1 "$tmp/long-$mode.csv" | tr '\n' ' ')" = "index 0 2 " ]; then
    echo "ok: $mode mode drops the example over 512 ids"
  else
    echo "FAIL: $mode mode length rule: $(cat "$tmp/long-$mode.err")"; fail=1
  fi
done

[[ $fail -eq 0 ]] && echo "score: all passed"
exit $fail
