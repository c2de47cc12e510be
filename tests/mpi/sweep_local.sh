#!/usr/bin/env bash
# jobs/local.sh SWEEP.ini: a 2 x 2 sweep (BBT and BBTv2 x split seeds 13, 42) runs with mpirun, one run
# after another, under the names `bbt sweep plan` prints. The first local.sh is SIGKILLed in the middle
# of its first run; the next one resumes that run (every generation once) and runs the rest; a third
# skips every finished run.
source "$(dirname "$0")/common.bash"
make_tiny m
write_config base.ini "$PWD/m" 40
printf '' >site.env
export BBT_SITE_ENV=$PWD/site.env BBT_BIN=$BBT BBT_RESULTS=$PWD/results BBT_NP=2
cat >study.ini <<'INI'
[sweep]
base = base.ini
methods = bbt, bbtv2
seeds = 13, 42
[method bbt]
# long enough to be killed mid-run on an idle machine too (~300 calls/s: 600 calls ended before the kill)
cma.budget = 3000
INI

"$BBT" sweep plan study.ini >plan.txt
check "plan has 4 runs" test "$(wc -l <plan.txt)" -eq 4
IFS=$'\t' read -r -a f <plan.txt
check "a plan line's name = bbt train --print-run-name of its arguments" \
  test "$("$BBT" train --print-run-name "${f[@]:1}")" = "${f[0]}"
first=results/${f[0]}/run.h5

bash "$BBT_SOURCE_DIR/jobs/local.sh" study.ini >killed.log 2>&1 &
job=$!
check "the first run writes generations" wait_rows "$first" 13
launcher=$(pgrep -P "$job" | head -1) # setsid mpirun: its own process group
[[ -n $launcher ]] && kill -9 -- "-$launcher" 2>/dev/null
kill -9 "$job" 2>/dev/null
wait "$job" 2>/dev/null
check "the killed run's state is checkpoint" test "$("$BBT" report --state "$first")" = checkpoint

timeout 120 bash "$BBT_SOURCE_DIR/jobs/local.sh" study.ini >second.log 2>&1
check "the next local.sh runs the sweep (exit 0)" test $? -eq 0
check "... resuming the killed run" grep -q "resuming $PWD/$first from its last checkpoint" second.log
check "... which ends with generations 0..299 exactly once" \
  test "$(h5 "$first" 'int(list(f["train/generation"][()]) == list(range(300)))')" = 1
all_finished=1
while IFS=$'\t' read -r name _; do
  f=results/$name/run.h5
  [[ -f $f && $(h5 "$f" 'int(f["run/finished"][()]) * f.attrs["n_ranks"]') == 2 ]] || all_finished=0
done <plan.txt
check "every planned run finished, with 2 ranks" test $all_finished = 1
check "the methods are the plan's" test "$(h5 "results/$(sed -n 3p plan.txt | cut -f1)/run.h5" 'f.attrs["method"]')" = bbtv2
check "the split seeds are the plan's" test "$(h5 "results/$(sed -n 2p plan.txt | cut -f1)/run.h5" 'f.attrs["split_seed"]')" = 42

before=$(stat -c %Y results/*/run.h5 | tr '\n' ' ')
timeout 60 bash "$BBT_SOURCE_DIR/jobs/local.sh" study.ini >again.log 2>&1
check "a third local.sh exits 0" test $? -eq 0
check "... and skips all 4 runs" test "$(grep -c 'is finished; nothing to do' again.log)" -eq 4
check "... leaving the files alone" test "$(stat -c %Y results/*/run.h5 | tr '\n' ' ')" = "$before"

# A bad sweep file: bbt's one line, exit 2, nothing run.
printf '[sweep]\nbase = base.ini\n[axes]\nprompt.intrinsic_dimm = 1, 2\n' >bad.ini
bash "$BBT_SOURCE_DIR/jobs/local.sh" bad.ini >bad.log 2>&1
check "a bad sweep file exits 2" test $? -eq 2
check "... with bbt's FILE:LINE error" grep -q "^bbt: error: bad.ini:4: unknown key 'prompt.intrinsic_dimm'" bad.log
bash "$BBT_SOURCE_DIR/jobs/local.sh" study.ini --cma.budget 8 >extra.log 2>&1
check "overrides after a sweep file are refused (exit 2)" test $? -eq 2
exit $fail
