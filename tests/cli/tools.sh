#!/usr/bin/env bash
# `bbt make-tiny-model` and `bbt tokenize` as users run them: a model in the Hub's file layout that
# bbt loads, one output line per input line, errors by line, usage errors exit 2.
set -u
fail=0
tmp=${BBT_SCRATCH:-$(mktemp -d)}
rm -rf "$tmp"; mkdir -p "$tmp"
PY=${PYTHON:-/usr/bin/python3}
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi; }

"$BBT" make-tiny-model --out "$tmp/m" --layers 1 --hidden 16 --heads 2 --intermediate 32 --seed 3 >/dev/null ||
  { echo "FAIL: make-tiny-model"; exit 1; }
check "Hub layout" 'for f in config.json model.safetensors vocab.json merges.txt; do [ -s "$tmp/m/$f" ] || exit 1; done'
"$PY" - "$tmp/m" <<'PYEOF' || { echo "FAIL: config.json / safetensors header"; fail=1; }
import json, struct, sys
d = sys.argv[1]
c = json.load(open(f"{d}/config.json"))
assert c["hidden_size"] == 16 and c["num_hidden_layers"] == 1 and c["max_position_embeddings"] == 514, c
assert c["vocab_size"] == len(json.load(open(f"{d}/vocab.json"))), "vocab_size != vocab.json"
with open(f"{d}/model.safetensors", "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
assert "lm_head.decoder.weight" not in header, "decoder should be tied to the word embeddings"
assert header["roberta.embeddings.word_embeddings.weight"]["shape"] == [c["vocab_size"], 16]
PYEOF
# bbt loads it: a zero-prompt score of two sentences.
printf 'sentence\tlabel\ngood film\t1\nbad film\t0\n' >"$tmp/d.tsv"
check "the model loads and scores" '"$BBT" score --model.path "$tmp/m" --task.name sst2 --data "$tmp/d.tsv" --out "$tmp/s.csv" 2>/dev/null && [ "$(wc -l <"$tmp/s.csv")" -eq 3 ]'
"$BBT" make-tiny-model --layers 1 >/dev/null 2>&1; rc=$?; check "no --out: exit 2" '[ $rc -eq 2 ]'
"$BBT" make-tiny-model --out "$tmp/m2" --vocab-from "$tmp/nowhere" >/dev/null 2>&1; rc=$?
check "missing --vocab-from: exit 2" '[ $rc -eq 2 ]'

# tokenize: one line out per line in (an empty line for an empty line), RoBERTa ids.
printf 'Hello world\n\nIt was <mask> .\nlast line without newline' >"$tmp/in.txt"
"$BBT" tokenize --tokenizer "$tmp/m" <"$tmp/in.txt" >"$tmp/out.txt" || { echo "FAIL: tokenize"; fail=1; }
check "tokenize output" '[ "$(sed -n 1,3p "$tmp/out.txt")" = "$(printf "15500 999\n\n1030 377 50264 768")" ] && [ "$(wc -l <"$tmp/out.txt")" -eq 4 ]'
printf 'fine\nbad \377 byte\n' >"$tmp/bad.txt"
"$BBT" tokenize --tokenizer "$tmp/m" <"$tmp/bad.txt" >/dev/null 2>"$tmp/err.txt"; rc=$?
check "invalid UTF-8: exit 1, names the line" '[ $rc -eq 1 ] && grep -q "line 2: cannot tokenize invalid UTF-8 (byte 4" "$tmp/err.txt" && [ "$(wc -l <"$tmp/err.txt")" -eq 1 ]'
"$BBT" tokenize </dev/null >/dev/null 2>&1; rc=$?; check "no --tokenizer: exit 2" '[ $rc -eq 2 ]'
"$BBT" tokenize --bogus x </dev/null >/dev/null 2>&1; rc=$?; check "unknown option: exit 2" '[ $rc -eq 2 ]'
check "tokenize --help" '"$BBT" tokenize --help >/dev/null'
exit $fail
