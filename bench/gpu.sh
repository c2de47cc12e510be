#!/usr/bin/env bash
# One prepared run for the lent GPU machine (untested until a session draws one): unpack the carried
# Debian packages (bench/fetch_debs.sh fetches them into build-debs/), build bbt against the
# image's CUDA libtorch, then benchmark and train. Results go to $OUT (or results/gpu).
# Run from the repo root with the device tool, carrying build-debs and third_party/npm/node_modules:
#   run(command="bash bench/gpu.sh", carry=["build-debs", "third_party/npm/node_modules"], timeout_s=540)
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${OUT:-$root/results/gpu}
mkdir -p "$out"
exec > >(tee "$out/gpu.log") 2>&1
step() { echo "== $(date +%T) $*"; }
cd "$root"

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())'

step "unpack Debian packages"
prefix=$root/build-debs/root
rm -rf "$prefix" && mkdir -p "$prefix"
for deb in "$root"/build-debs/*.deb; do dpkg -x "$deb" "$prefix"; done
# Absolute symlinks (libfoo.so -> /usr/lib/...) must point inside the prefix.
find "$prefix" -type l | while read -r l; do
  t=$(readlink "$l")
  [[ $t == /* ]] && ln -sfn "$prefix$t" "$l"
done
multi=$prefix/usr/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH=$multi:$multi/hdf5/serial/lib:$multi/openmpi/lib:${LD_LIBRARY_PATH:-}
export PKG_CONFIG_PATH=$multi/pkgconfig:$prefix/usr/share/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$prefix
export OPAL_PREFIX=$prefix/usr PATH=$prefix/usr/bin:$PATH
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Do Debian 12's libraries load on this image? (missing ones show as "not found")
ldd "$multi/libmpi.so.40" "$multi/hdf5/serial/lib/libhdf5.so" "$multi/libboost_program_options.so.1.74.0" |
  grep -E "not found|^/" || true

step "configure + build"
torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DBBT_BUILD_TESTS=OFF \
  -DCMAKE_PREFIX_PATH="$torch_prefix;$prefix/usr;$multi/cmake" -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DMPI_C_HEADER_DIR="$multi/openmpi/include" -DMPI_C_LIB_NAMES=mpi -DMPI_mpi_LIBRARY="$multi/libmpi.so" \
  -DMPI_C_COMPILER=/nonexistent -DHDF5_C_COMPILER_EXECUTABLE=/nonexistent -DHDF5_ROOT="$multi/hdf5/serial" \
  -DHDF5_PREFER_PARALLEL=OFF -DBoost_NO_SYSTEM_PATHS=ON -DBoost_ROOT="$prefix/usr" \
  -DEigen3_DIR="$prefix/usr/share/eigen3/cmake" -Dnlohmann_json_DIR="$prefix/usr/share/cmake/nlohmann_json" \
  >"$out/cmake.log" 2>&1 || { tail -40 "$out/cmake.log"; exit 1; }
ninja -C build-gpu -j"$(nproc)" bbt >"$out/build.log" 2>&1 || { grep -m5 -A5 error "$out/build.log"; exit 1; }
bbt=$root/build-gpu/bbt

step "CMA-ES on this node's CPU: the same bits as on the development machine, and its speed"
# 158.75729723679063 is what the 2-core development VM (GCC 12, AVX-512, every kernel set) prints; a
# different CPU model, compiler or kernel set must give exactly the same number.
"$bbt" bench cma --dim 200 --popsize 10 --generations 60 | tee "$out/cma-bits.json" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("best_f", repr(r["best_f"]), "kernels", r["kernels"], "same bits as the development machine:",
      r["best_f"] == 158.75729723679063)'
"$bbt" bench cma --dim 500 --popsize 20 --generations 400 | tee "$out/cma-speed.json"
"$bbt" bench eigen | tee "$out/eigen.json"

step "bench forward (SST-2-shaped call: 20 candidates x 32 examples, add mode, 50 prompt tokens)"
for spec in "large bfloat16 1024" "large bfloat16 640" "large float32 640" "base bfloat16 640"; do
  read -r shape dtype rows <<<"$spec"
  timeout 120 "$bbt" bench forward --shape "$shape" --device cuda --dtype "$dtype" --batch-seqs "$rows" \
    --repeats 10 --warmup 2 | tee "$out/forward-$shape-$dtype-$rows.json"
done

step "training: 400 generations (popsize 20, 32 examples, 50 tokens) on random large-shaped weights"
model=$root/build-gpu/large-model
"$bbt" make-tiny-model --out "$model" --layers 24 --hidden 1024 --heads 16 --intermediate 4096 --seed 1 \
  --init-std 0.02 >/dev/null
cat >"$out/gpu-train.ini" <<INI
[model]
path = $model
device = cuda
dtype = bfloat16
[task]
name = planted
k_shot = 16
split_seed = 42
planted_seed = 7
planted_pool = 2000
planted_test = 872
[prompt]
n_tokens = 50
mode = add
intrinsic_dim = 500
projection = normal
alpha = 100
[cma]
popsize = 20
sigma0 = 1
budget = 8000
seed = 42
[loss]
type = ce
[eval]
every = 1000
test = true
[output]
dir = $out/runs
run_name = large-planted
checkpoint_every = 100
log_every = 50
INI
# A single rank: try Open MPI's singleton start, else mpirun from the carried openmpi-bin.
timeout 330 "$bbt" train --config "$out/gpu-train.ini" ||
  timeout 330 mpirun -np 1 --oversubscribe "$bbt" train --config "$out/gpu-train.ini" --output.run_name large-planted-mpirun
python3 - "$out" <<'PY' || true
import glob, json, sys
try:
    import h5py, numpy as np
except ImportError:
    sys.exit("no h5py here: read $OUT/runs/*/run.h5 elsewhere")
for p in glob.glob(sys.argv[1] + "/runs/*/run.h5"):
    with h5py.File(p, "r") as f:
        s = f["/train/seconds_total"][:]
        print(json.dumps({"run": p, "generations": int(len(s)), "median_seconds_per_generation": float(np.median(s[1:])),
                          "best_accuracy": float(f["/train/best_accuracy"][-1])}))
PY
step "done"
