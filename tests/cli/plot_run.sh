#!/usr/bin/env bash
# tools/plot_run.py: a PNG of the loss/dev curves, from a running job's file (SWMR) and a finished one.
set -u
fail=0
tmp=${BBT_SCRATCH:-$(mktemp -d)}
rm -rf "$tmp"; mkdir -p "$tmp"
PY=${PYTHON:-/usr/bin/python3}
PLOT=$BBT_SOURCE_DIR/tools/plot_run.py
command -v mpirun >/dev/null || { echo "SKIP: no mpirun"; exit 77; }
"$PY" -c "import h5py, matplotlib" 2>/dev/null || { echo "SKIP: no h5py/matplotlib"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

# The plot tool's names are the schema owner's: every SCHEMA entry is in `bbt report --schema`
# with the same path, and the tool names no run-file path outside SCHEMA.
"$BBT" report --schema >"$tmp/schema.json" || { echo "FAIL: bbt report --schema"; fail=1; }
if "$PY" - "$PLOT" "$tmp/schema.json" <<'PY'; then echo "ok: plot_run.py names = bbt's schema"; else echo "FAIL: plot_run.py names differ from bbt report --schema"; fail=1; fi
import ast, json, re, sys
src = open(sys.argv[1]).read()
owner = json.load(open(sys.argv[2]))
mine = ast.literal_eval(re.search(r"^SCHEMA = (\{.*?^\})", src, re.S | re.M).group(1))
bad = {k: v for k, v in mine.items() if owner.get(k) != v}
body = src[src.index("def die"):]
stray = re.findall(r'"(/[a-z_]+/[a-z_/]*)"', body)
print("  differing:", bad, "paths outside SCHEMA:", stray)
sys.exit(1 if bad or stray or len(mine) < 8 else 0)
PY

"$BBT" make-tiny-model --out "$tmp/m" --layers 2 --hidden 64 --heads 4 --intermediate 128 --seed 1 \
  --init-std 0.1 >/dev/null || { echo "FAIL: make-tiny-model"; exit 1; }
mpirun -np 1 "$BBT" train --config "$BBT_SOURCE_DIR/configs/demo.ini" --model.path "$tmp/m" \
  --output.dir "$tmp/results" --output.run_name p --cma.budget 600 --task.planted_pool 400 \
  --task.planted_test 200 --eval.every 40 --output.log_every 1 >"$tmp/train.log" 2>&1 &
job=$!
run=$tmp/results/p/run.h5

is_png() {  # is_png FILE: PNG magic bytes and at least 10 kB
  [[ -f $1 ]] && [[ $(head -c 8 "$1" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] &&
    [[ $(stat -c %s "$1") -gt 10000 ]]
}

# While the job runs: wait for the first generations, then plot the live file.
for _ in $(seq 1 120); do
  grep -q "^gen 3 " "$tmp/train.log" 2>/dev/null && break
  kill -0 $job 2>/dev/null || break
  sleep 0.5
done
if kill -0 $job 2>/dev/null; then
  if "$PY" "$PLOT" "$run" -o "$tmp/live.png" >/dev/null && is_png "$tmp/live.png"; then
    echo "ok: plotted the file of a running job"
  else
    echo "FAIL: plot of a running job's file"; fail=1
  fi
else
  echo "note: the job ended before a live plot could be made"
fi
wait $job || { echo "FAIL: training run"; cat "$tmp/train.log"; exit 1; }

"$PY" "$PLOT" "$run" -o "$tmp/curves.png" >/dev/null || { echo "FAIL: plot_run.py"; fail=1; }
if is_png "$tmp/curves.png"; then echo "ok: curves.png is a PNG of $(stat -c %s "$tmp/curves.png") bytes"
else echo "FAIL: curves.png missing, not a PNG or too small"; fail=1; fi
"$PY" - "$tmp/curves.png" <<'PYEOF' || fail=1
import sys, matplotlib.image as im
a = im.imread(sys.argv[1])
ok = a.shape[0] >= 400 and a.shape[1] >= 400 and a.std() > 0.01
print(("ok" if ok else "FAIL") + f": image {a.shape}, pixel std {a.std():.3f}")
sys.exit(0 if ok else 1)
PYEOF

# Errors: one line naming the file, exit 1.
out=$("$PY" "$PLOT" "$tmp/missing.h5" -o "$tmp/x.png" 2>&1); rc=$?
if [[ $rc -eq 1 && $out == *"$tmp/missing.h5"* && $(wc -l <<<"$out") -eq 1 ]]; then echo "ok: $out"
else echo "FAIL (exit $rc): $out"; fail=1; fi
"$PY" -c "import h5py; h5py.File('$tmp/other.h5', 'w')['x'] = 1"
out=$("$PY" "$PLOT" "$tmp/other.h5" -o "$tmp/x.png" 2>&1); rc=$?
if [[ $rc -eq 1 && $out == *"not a bbt run file"* ]]; then echo "ok: $out"; else echo "FAIL (exit $rc): $out"; fail=1; fi

[[ $fail -eq 0 ]] && echo "plot_run: all passed"
exit $fail
