#!/usr/bin/env bash
# `bbt report`: two short planted-task runs (different split seeds, 1 and 2 ranks); the table's
# numbers must equal h5py's reads of the files; an unfinished run is listed but not averaged; a
# run relabelled sst2 brings the paper's column, BBT row and avg; bad files are one-line errors.
set -u
fail=0
tmp=${BBT_SCRATCH:-$(mktemp -d)}
rm -rf "$tmp"; mkdir -p "$tmp"
PY=${PYTHON:-/usr/bin/python3}
command -v mpirun >/dev/null || { echo "SKIP: no mpirun"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

"$BBT" make-tiny-model --out "$tmp/m" --layers 2 --hidden 64 --heads 4 --intermediate 128 --seed 1 \
  --init-std 0.1 >/dev/null || { echo "FAIL: make-tiny-model"; exit 1; }
train() {  # train NP SPLIT_SEED NAME
  mpirun -np "$1" "$BBT" train --config "$BBT_SOURCE_DIR/configs/demo.ini" --model.path "$tmp/m" \
    --output.dir "$tmp/results" --output.run_name "$3" --task.split_seed "$2" --cma.budget 200 \
    --task.planted_pool 400 --task.planted_test 200 --eval.every 40 >"$tmp/$3.log" 2>&1 ||
    { echo "FAIL: training run $3"; cat "$tmp/$3.log"; exit 1; }
}
train 1 11 r1
train 2 12 r2
r1=$tmp/results/r1/run.h5 r2=$tmp/results/r2/run.h5

# An unfinished run (as a killed job leaves it) and a run relabelled as SST-2.
"$PY" - "$r1" "$tmp" <<'EOF' || { echo "FAIL: preparing copies"; exit 1; }
import shutil, sys, h5py, numpy as np
r1, d = sys.argv[1], sys.argv[2]
shutil.copy(r1, f"{d}/incomplete.h5")
with h5py.File(f"{d}/incomplete.h5", "r+") as f:
    f["/run/finished"][()] = 0
    f["/test/metric"][()] = np.nan
    f["/run/seconds_total"][()] = np.nan
shutil.copy(r1, f"{d}/sst2.h5")
with h5py.File(f"{d}/sst2.h5", "r+") as f:
    f.attrs["task"] = "sst2"
with h5py.File(f"{d}/notrun.h5", "w") as f:
    f["x"] = 1
EOF

"$BBT" report "$r1" "$r2" "$tmp/incomplete.h5" "$tmp/sst2.h5" --format csv >"$tmp/report.csv" ||
  { echo "FAIL: bbt report --format csv"; fail=1; }
"$BBT" report "$r1" "$r2" "$tmp/incomplete.h5" "$tmp/sst2.h5" >"$tmp/report.txt" || { echo "FAIL: text"; fail=1; }
"$BBT" report "$r1" "$r2" "$tmp/sst2.h5" --format markdown >"$tmp/report.md" || { echo "FAIL: markdown"; fail=1; }
"$BBT" report "$r1" >"$tmp/single.txt" || { echo "FAIL: one run"; fail=1; }
cat "$tmp/report.txt"
cat "$tmp/report.md"

"$PY" - "$tmp" "$r1" "$r2" <<'EOF' || fail=1
import csv, io, sys
import h5py, numpy as np
d, r1, r2 = sys.argv[1:4]
bad = 0
def check(cond, msg):
    global bad
    print(("ok: " if cond else "FAIL: ") + msg)
    bad |= not cond
runs_txt, summary_txt = open(f"{d}/report.csv").read().split("\n\n")
runs = list(csv.DictReader(io.StringIO(runs_txt)))
summary = list(csv.DictReader(io.StringIO(summary_txt)))
check([r["file"] for r in runs] == [r1, r2, f"{d}/incomplete.h5", f"{d}/sst2.h5"], "one row per file, in order")
p = lambda v: f"{100 * v:.2f}"
for row in runs:
    with h5py.File(row["file"], "r") as f:
        a = f.attrs
        finished = int(f["/run/finished"][()]) == 1
        want = {
            "task": f"{a['task']} ({a['metric']})",
            "status": "finished" if finished else "running/incomplete",
            "split_seed": str(a["split_seed"]), "seed": str(a["seed"]), "ranks": str(a["n_ranks"]),
            "api_calls": str(int(f["/train/api_calls"][-1])),
            "best_dev": p(f["/best/dev_metric"][()]),
            "test": p(f["/test/metric"][()]) if finished else "-",
            "initial_test": p(f["/test/initial_metric"][()]),
            "wall_s": f"{f['/run/seconds_total'][()]:.1f}" if finished else
                      f"{f['/train/seconds_total'][()].sum():.1f}",
        }
    for k, v in want.items():
        check(row[k] == v, f"{row['file'].split('/')[-2:]} {k}: report {row[k]!r}, h5py {v!r}")
check(runs[0]["ranks"] == "1" and runs[1]["ranks"] == "2", "ranks 1 and 2")
check(runs[0]["split_seed"] != runs[1]["split_seed"], "different split seeds")
# Per task: the planted mean/std over r1, r2 only (the incomplete copy is left out), SST-2 from one run.
t = []
for path in (r1, r2):
    with h5py.File(path, "r") as f:
        t.append(f["/test/metric"][()])
by = {s["task"]: s for s in summary}
check(set(by) == {"sst2", "planted", "avg"}, f"summary rows {sorted(by)}")
check(by["planted"]["runs"] == "2", "planted: 2 finished runs averaged")
check(by["planted"]["mean"] == p(np.mean(t)), f"planted mean {by['planted']['mean']} vs {p(np.mean(t))}")
check(by["planted"]["std"] == p(np.std(t, ddof=1)), f"planted std {by['planted']['std']} vs {p(np.std(t, ddof=1))}")
check(by["sst2"]["column"] == "SST-2" and by["sst2"]["paper_bbt"] == "89.56", "SST-2 column with paper BBT")
check(by["avg"]["paper_bbt"] == "89.56" and by["avg"]["mean"] == p(t[0]), "avg over the paper's tasks only")
txt = open(f"{d}/report.txt").read()
check("running/incomplete" in txt and "BBT (paper)" in txt and "89.56" in txt, "text: status, paper row")
check(f"{p(np.mean(t))} ± {p(np.std(t, ddof=1))}" in txt, "text: planted mean ± std")
md = open(f"{d}/report.md").read().splitlines()
check(all(l.startswith("|") for l in md if l), "markdown: every table line is a pipe row")
check(any("| SST-2" in l for l in md), "markdown: SST-2 heading")
single = open(f"{d}/single.txt").read()
check("BBT (paper)" not in single and len(single.strip().splitlines()) == 3, "one run: no summary table")
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
echo "not hdf5" >"$tmp/text.h5"
expect 1 "$tmp/missing.h5" -- "$BBT" report "$r1" "$tmp/missing.h5"
expect 1 "$tmp/text.h5" -- "$BBT" report "$tmp/text.h5"
expect 1 "$tmp/notrun.h5" -- "$BBT" report "$tmp/notrun.h5"
expect 2 "no run files" -- "$BBT" report

# Good and bad files mixed: the good rows still come, one error line per bad file, exit 1.
out=$("$BBT" report "$r1" "$tmp/missing.h5" "$r2" "$tmp/text.h5" --format csv 2>"$tmp/mixed.err"); rc=$?
err=$(cat "$tmp/mixed.err")
if [[ $rc -eq 1 && $(wc -l <"$tmp/mixed.err") -eq 2 && $(grep -c "^bbt: error: .*$tmp/missing.h5" <<<"$err") -eq 1 &&
      $(grep -c "^bbt: error: .*$tmp/text.h5" <<<"$err") -eq 1 ]]; then
  echo "ok: mixed files: one error line per bad file, exit 1"
else
  echo "FAIL: mixed files (exit $rc): $err"; fail=1
fi
if [[ $(grep -cF -e ",$r1" -e ",$r2" <<<"$out") -eq 2 ]]; then echo "ok: mixed files: both good runs reported"
else echo "FAIL: mixed files: good rows missing: $out"; fail=1; fi
out=$("$BBT" report --state "$r1" "$tmp/missing.h5" "$tmp/text.h5" "$tmp/incomplete.h5" 2>"$tmp/state.err"); rc=$?
if [[ $rc -eq 1 && $(tr '\n' ' ' <<<"$out") == "finished none error checkpoint " && $(wc -l <"$tmp/state.err") -eq 1 ]] &&
   grep -q "^bbt: error: .*$tmp/text.h5" "$tmp/state.err"; then
  echo "ok: --state with a bad file: one word per file, one error line, exit 1"
else
  echo "FAIL: --state with a bad file (exit $rc): $out / $(cat "$tmp/state.err")"; fail=1
fi
expect 2 "--format" -- "$BBT" report "$r1" --format xml

[[ $fail -eq 0 ]] && echo "report: all passed"
exit $fail
