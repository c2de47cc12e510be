#!/usr/bin/env bash
# `bbt report --sweep FILE` on real tiny runs of a 2 methods x 2 planted tasks x 2 split seeds sweep in
# which one run failed, one is unfinished (checkpointed by SIGUSR1) and one is missing: the table's
# numbers equal h5py's reads of the run files, those three runs are shown as such in their cells, and
# the Markdown, CSV and LaTeX outputs parse. An ablation sweep (one axis) gets its axis table.
# tools/plot_sweep.py draws the convergence and ablation figures (PNG and PDF) from the same files.
set -u
fail=0
tmp=${BBT_SCRATCH:-$(mktemp -d)}
rm -rf "$tmp"; mkdir -p "$tmp"; cd "$tmp" || exit 1
PY=${PYTHON:-/usr/bin/python3}
command -v mpirun >/dev/null || { echo "SKIP: no mpirun"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
unset BBT_RESULTS
check() { # check "what" command...
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi
}

"$BBT" make-tiny-model --out m --layers 2 --hidden 32 --heads 4 --intermediate 64 --seed 3 --init-std 0.1 >/dev/null ||
  { echo "FAIL: make-tiny-model"; exit 1; }
cat >base.ini <<INI
[model]
path = $tmp/m
threads = 1
[task]
name = planted
k_shot = 16
planted_pool = 400
planted_test = 200
[prompt]
n_tokens = 5
intrinsic_dim = 20
alpha = 100
[cma]
popsize = 10
budget = 60
[loss]
logit_scale = 10
[eval]
every = 20
[output]
dir = $tmp/results
checkpoint_every = 3
INI
cat >study.ini <<'INI'
[sweep]
base = base.ini
methods = bbt, manual
tasks = a, b
seeds = 13, 42
[task a]
task.name = planted
task.planted_seed = 7
[task b]
task.name = planted
task.planted_seed = 11
INI
cat >ablation.ini <<'INI'
[sweep]
base = base.ini
methods = bbt
tasks = a
seeds = 13
[axes]
prompt.intrinsic_dim = 10, 20
[task a]
task.name = planted
task.planted_seed = 7
INI
"$BBT" sweep plan study.ini >plan.txt && "$BBT" sweep plan ablation.ini >ablation-plan.txt ||
  { echo "FAIL: bbt sweep plan"; exit 1; }
line() { sed -n "$1p" "$2" | cut -f2-; }  # line N PLAN: the run's bbt train arguments
train() {                                   # train N PLAN [extra arguments]: one run, no mpirun
  local n=$1 plan=$2
  shift 2
  IFS=$'\t' read -r -a args <<<"$(line "$n" "$plan")"
  "$BBT" train "${args[@]}" "$@" >"run-$n-$(basename "$plan" .txt).log" 2>&1
}
# Plan order: bbt a 13, bbt a 42, bbt b 13, bbt b 42, manual a 13, manual a 42, manual b 13, manual b 42.
for n in 1 4 5 6 7; do train "$n" plan.txt || { echo "FAIL: run $n"; cat "run-$n-plan.log"; exit 1; }; done
for n in 1 2; do train "$n" ablation-plan.txt || { echo "FAIL: ablation run $n"; exit 1; }; done
# Run 2 fails (a rank's injected error before any checkpoint).
IFS=$'\t' read -r -a args <<<"$(line 2 plan.txt)"
timeout 120 mpirun -np 2 -x BBT_TEST_FAIL_ON_RANK=1 "$BBT" train "${args[@]}" >run-2.log 2>&1
check "run 2 fails" test $? -eq 1
# Run 3 is stopped by SIGUSR1 after a checkpoint (a larger budget: same name, still unfinished).
IFS=$'\t' read -r -a args <<<"$(line 3 plan.txt)"
"$BBT" train "${args[@]}" --cma.budget=100000 >run-3.log 2>&1 &
job=$!
name3=$(sed -n 3p plan.txt | cut -f1)
for _ in $(seq 1 600); do
  [[ $("$BBT" report --state "results/$name3/run.h5" 2>/dev/null) == checkpoint ]] && break
  sleep 0.1
done
kill -USR1 $job
wait $job
code=$?
check "run 3 checkpoints and exits 75" test $code -eq 75
((code == 75)) || kill "$job" 2>/dev/null
# Run 8 is never started (missing).

"$BBT" report --sweep study.ini >report.txt 2>report.err
check "report --sweep exits 0" test $? -eq 0
cat report.txt
check "the summary line counts every state" \
  grep -q "8 runs of study.ini: 5 finished, 1 unfinished, 1 failed, 1 missing" report.txt
for st in failed unfinished missing; do
  check "an $st run is listed by name" grep -Eq "^base-s[0-9]+-[0-9a-f]{8} .* $st " report.txt
done
check "bbt's row shows the failed run of task a" grep -Eq "^bbt +[0-9.]+ \(failed 1/2\)" report.txt
check "bbt's row shows the unfinished run of task b" grep -Eq "^bbt .*[0-9.]+ \(unfinished 1/2\)" report.txt
check "manual's row shows the missing run of task b" grep -Eq "^manual .*[0-9.]+ \(missing 1/2\)" report.txt

"$BBT" report --sweep study.ini --format csv >report.csv &&
  "$BBT" report --sweep study.ini --format markdown >report.md &&
  "$BBT" report --sweep study.ini --format latex >report.tex &&
  "$BBT" report --sweep ablation.ini --format csv >ablation.csv &&
  "$BBT" report --sweep ablation.ini >ablation.txt
check "every format exits 0" test $? -eq 0
cat ablation.txt
check "the ablation table has the axis values as rows" grep -Eq "^prompt.intrinsic_dim=20 +[0-9.]+ " ablation.txt
# layout = ablation: the same runs, the methods compared as an ablation's axis (no paper rows).
sed 's/^seeds = 13, 42$/seeds = 13, 42\nlayout = ablation/' study.ini >methods.ini
"$BBT" report --sweep methods.ini >methods.txt
check "layout = ablation: the methods as the ablation's rows, no Table 3 paper rows" bash -c \
  "grep -q 'Ablation: test metric x100 against the method' methods.txt && grep -Eq '^bbt +[0-9.]+ ' methods.txt &&
   ! grep -q '(paper)' methods.txt && ! grep -q 'Table 3 layout' methods.txt"

# The numbers, recomputed from the run files with h5py; the formats parse.
"$PY" - <<'PY'
import csv, io, math, re, sys, h5py, numpy as np
ok = True
def fail(msg):
    global ok
    print("FAIL:", msg); ok = False
def runs(plan):
    out = []
    for line in open(plan):
        f = line.rstrip("\n").split("\t")
        kv = dict(a[2:].split("=", 1) for a in f[2:])
        out.append((f[0], kv))
    return out
def expected(plan, results="results"):
    cells = {}
    for name, kv in runs(plan):
        key = (kv["method.name"], kv.get("task.planted_seed"), kv.get("prompt.intrinsic_dim", ""))
        c = cells.setdefault(key, [])
        try:
            with h5py.File(f"{results}/{name}/run.h5", "r") as f:
                if int(f["run/finished"][()]) == 1:
                    c.append(float(f["test/metric"][()]))
        except OSError:
            pass
    return cells
cells = expected("plan.txt")
rows = list(csv.DictReader(open("report.csv")))
if len(rows) != 4: fail(f"csv rows {len(rows)} != 4")
seed_of = {"a": "7", "b": "11"}
for r in rows:
    v = cells[(r["method"], seed_of[r["task"]], "")]
    if int(r["finished"]) != len(v): fail(f"{r['method']}/{r['task']}: finished {r['finished']} vs {len(v)}")
    mean = 100 * np.mean(v)
    std = 100 * np.std(v, ddof=1) if len(v) > 1 else 0.0
    if abs(float(r["mean"]) - mean) > 1e-4 or abs(float(r["std"]) - std) > 1e-4:
        fail(f"{r['method']}/{r['task']}: mean/std {r['mean']}/{r['std']} vs h5py {mean:.4f}/{std:.4f}")
    if r["method"] == "bbt" and float(r["api_calls"]) != 60: fail(f"api_calls {r['api_calls']}")
nc = {(r["method"], r["task"]): r["not_counted"] for r in rows}
want = {("bbt", "a"): "failed 1/2", ("bbt", "b"): "unfinished 1/2", ("manual", "a"): "", ("manual", "b"): "missing 1/2"}
if nc != want: fail(f"not_counted {nc}")
ab = list(csv.DictReader(open("ablation.csv")))
cells = expected("ablation-plan.txt")
for r in ab:
    v = cells[("bbt", "7", r["prompt.intrinsic_dim"])]
    if abs(float(r["mean"]) - 100 * v[0]) > 1e-4: fail(f"ablation {r}")
if len(ab) != 2: fail("ablation rows")
# Markdown: every table line has the same number of cells as its header.
for block in open("report.md").read().split("\n\n"):
    lines = [l for l in block.splitlines() if l.startswith("|")]
    if lines and len({l.count("|") for l in lines}) != 1: fail(f"markdown table ragged: {lines[:3]}")
tex = open("report.tex").read()
if tex.count("\\begin{tabular}") != tex.count("\\end{tabular}") or tex.count("\\begin{tabular}") < 2:
    fail("latex tabulars unbalanced")
for tab in re.findall(r"\\begin\{tabular\}\{(\w+)\}(.*?)\\end\{tabular\}", tex, re.S):
    cols = len(tab[0])
    for l in tab[1].splitlines():
        if l.endswith("\\\\") and l.count("&") - l.count("\\&") != cols - 1: fail(f"latex row {l}")
print("ok: report numbers = h5py's; markdown, csv and latex parse" if ok else "")
sys.exit(0 if ok else 1)
PY
[[ $? -eq 0 ]] || fail=1

# Figures: the plot tool's names are bbt's schema; every figure written, PNG and PDF, non-empty.
if "$PY" -c "import matplotlib" 2>/dev/null; then
  "$BBT" report --schema >schema.json
  check "plot_sweep.py names = bbt report --schema" "$PY" -c '
import ast, json, re, sys
src = open(sys.argv[1]).read(); owner = json.load(open(sys.argv[2]))
mine = ast.literal_eval(re.search(r"^SCHEMA = (\{.*?^\})", src, re.S | re.M).group(1))
body = src[src.index("def die"):]
sys.exit(1 if any(owner.get(k) != v for k, v in mine.items()) or re.findall(r"\"(/[a-z_]+/[a-z_/]*)\"", body) else 0)' \
    "$BBT_SOURCE_DIR/tools/plot_sweep.py" schema.json
  "$PY" "$BBT_SOURCE_DIR/tools/plot_sweep.py" --bbt "$BBT" --sweep study.ini --out fig >plot.log 2>&1 &&
    "$PY" "$BBT_SOURCE_DIR/tools/plot_sweep.py" --bbt "$BBT" --sweep ablation.ini --out fig-ablation >>plot.log 2>&1
  check "plot_sweep.py exits 0" test $? -eq 0
  for f in fig/convergence fig-ablation/convergence fig-ablation/ablation_prompt_intrinsic_dim; do
    check "$f.png is a PNG of > 10 kB" test "$(head -c 8 "$f.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a -a \
      "$(stat -c %s "$f.png")" -gt 10000
    check "$f.pdf is a PDF" test "$(head -c 5 "$f.pdf")" = "%PDF-"
  done
  check "no ablation figure without axes" test ! -e fig/ablation_prompt_intrinsic_dim.png
else
  echo "skipped: figures (no matplotlib)"
fi

"$BBT" report --sweep study.ini --format xml >/dev/null 2>bad.err
check "an unknown format exits 2" test $? -eq 2
"$BBT" report --sweep nowhere.ini >/dev/null 2>bad.err
check "a missing sweep file exits 2 with one line" test $? -eq 2 -a "$(wc -l <bad.err)" -eq 1
exit $fail
