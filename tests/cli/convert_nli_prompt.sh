#!/usr/bin/env bash
# tools/convert_nli_prompt.py: a .pt made by Debian's Python torch the way the reference saved its
# pre-trained prompt (an nn.Embedding pickled whole with torch.save, here from a module's attribute)
# converts to a float32 .npy with the same values, which bbt loads as p0 (cat mode: the logits move
# and equal those of the same array written by numpy). A state dict converts too; bad input fails
# in one line.
set -u
fail=0
tmp=${BBT_SCRATCH:-$(mktemp -d)}
rm -rf "$tmp"; mkdir -p "$tmp"
PY=${PYTHON:-/usr/bin/python3}
tool="$BBT_SOURCE_DIR/tools/convert_nli_prompt.py"
check() { local what=$1; shift; if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi; }

"$BBT" make-tiny-model --out "$tmp/m" --layers 2 --hidden 32 --heads 4 --intermediate 64 --seed 3 \
  --init-std 0.1 >/dev/null || { echo "FAIL: make-tiny-model"; exit 1; }
printf 'sentence\tlabel\n' >"$tmp/dev.tsv"
printf 'a gripping , funny film .\t1\n' >>"$tmp/dev.tsv"
printf 'dull and lifeless from start to end\t0\n' >>"$tmp/dev.tsv"
printf 'an utter mess\t0\n' >>"$tmp/dev.tsv"

"$PY" - "$tmp" <<'PY' || { echo "FAIL: writing .pt files"; exit 1; }
import sys, torch, numpy as np
d = sys.argv[1]
torch.manual_seed(4)
class Model(torch.nn.Module):  # the reference keeps the prompt as a module attribute
    def __init__(self):
        super().__init__()
        self.prompt_embedding = torch.nn.Embedding(5, 32)
m = Model()
torch.save(m.prompt_embedding, f"{d}/prompt.pt")
torch.save(m.prompt_embedding.state_dict(), f"{d}/state.pt")
np.save(f"{d}/want.npy", m.prompt_embedding.weight.detach().numpy().astype(np.float32))
torch.save({"a": torch.zeros(2), "b": torch.zeros(3)}, f"{d}/two.pt")
open(f"{d}/junk.pt", "w").write("not a pickle")
PY
check "an nn.Embedding .pt converts" "$PY" "$tool" "$tmp/prompt.pt" "$tmp/prompt.npy"
check "a state dict .pt converts" "$PY" "$tool" "$tmp/state.pt" "$tmp/state.npy"
check "the values are the embedding's, float32 [5, 32]" "$PY" -c "import sys, numpy as np
a, b, w = (np.load('$tmp/' + n) for n in ['prompt.npy', 'state.npy', 'want.npy'])
sys.exit(0 if a.dtype == np.float32 and a.shape == (5, 32) and np.array_equal(a, w) and np.array_equal(b, w) else 1)"
score() { "$BBT" score --model "$tmp/m" --task sst2 --data "$tmp/dev.tsv" --prompt-mode cat --threads 1 "$@" 2>>"$tmp/stderr.log"; }
score --prompt-npy "$tmp/prompt.npy" --out "$tmp/conv.csv"
check "bbt loads the converted prompt as p0" test $? -eq 0
score --prompt-npy "$tmp/want.npy" --out "$tmp/want.csv"
score --out "$tmp/none.csv"
check "its logits equal those of the same array from numpy" cmp -s "$tmp/conv.csv" "$tmp/want.csv"
check "and differ from no prompt" bash -c "! cmp -s '$tmp/conv.csv' '$tmp/none.csv'"
for bad in two junk; do
  "$PY" "$tool" "$tmp/$bad.pt" "$tmp/$bad.npy" 2>"$tmp/$bad.err" >/dev/null
  rc=$?
  check "$bad.pt: exit 1 with one error line" bash -c \
    "test $rc -eq 1 && test \$(wc -l <'$tmp/$bad.err') -eq 1 && grep -q '^convert_nli_prompt: error: ' '$tmp/$bad.err'"
done
exit $fail
