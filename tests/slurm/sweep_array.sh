#!/usr/bin/env bash
# jobs/sweep.sbatch as a 2-element job array (one task x split seeds 13, 42): each element writes its own
# run file with its own seed; a dependent job (afterok) runs `sweep.sbatch --report` over both.
# Then a sweep file (configs/sweeps format) submitted with `sweep.sbatch --submit FILE --max-running 1`:
# one array of its plan's runs, throttled to one at a time (%1), each element running its plan line;
# submitting it again skips every finished run.
source "$(dirname "${BASH_SOURCE[0]}")/helpers.bash"
rm -rf "$SCRATCH" && mkdir -p "$SCRATCH"
start_slurm
make_tiny_config 4
write_site_env
export TASKS=tiny SEEDS="13 42"

spec=$(bash "$SRC/jobs/sweep.sbatch" --array-spec) || fail "--array-spec failed"
[[ $spec == 0-1 ]] || fail "--array-spec gave '$spec', expected 0-1"
jid=$(timeout 30 sbatch --parsable --array="$spec" "${SBATCH_TEST_OPTS[@]}" -o "$SCRATCH/sweep-%a.out" \
  "$SRC/jobs/sweep.sbatch") || fail "sbatch sweep failed"
report_opts=(--parsable --dependency="afterok:$jid" --chdir="$SCRATCH" -n 1 -o "$SCRATCH/table.txt")
rjid=$(timeout 30 sbatch "${report_opts[@]}" --wrap "bash $SRC/jobs/sweep.sbatch --report") ||
  fail "sbatch report failed"

# Wait for the array (and the report) to leave the queue; bounded.
for ((i = 0; i < 1800; i++)); do
  [[ -z $(timeout 10 squeue -h -o %i 2>/dev/null) ]] && break
  if [[ $(job_field "$rjid" Reason) == DependencyNeverSatisfied ]]; then
    dump_logs "$SCRATCH"/sweep-*.out
    fail "an array element failed (report job $rjid: DependencyNeverSatisfied)"
  fi
  sleep 0.1
done
[[ -z $(timeout 10 squeue -h -o %i) ]] || { dump_logs "$SCRATCH"/sweep-*.out; fail "sweep still queued after 180 s"; }

for seed in 13 42; do
  run=$SCRATCH/results/tiny-s$seed/run.h5
  [[ -f $run ]] || { dump_logs "$SCRATCH"/sweep-*.out; fail "no run file $run"; }
  check_run_file "$run" "$TINY_GENERATIONS" 2 "$seed" || exit 1
done
grep -q "sweep element 0: task tiny, split seed 13" "$SCRATCH/sweep-0.out" || fail "element 0 log"
grep -q "sweep element 1: task tiny, split seed 42" "$SCRATCH/sweep-1.out" || fail "element 1 log"

[[ -s $SCRATCH/table.txt ]] || fail "report job wrote nothing"
for seed in 13 42; do
  grep -Eq "(^|[^0-9])$seed([^0-9]|$)" "$SCRATCH/table.txt" || { cat "$SCRATCH/table.txt" >&2; fail "report lacks seed $seed"; }
done
note "report table:"
cat "$SCRATCH/table.txt" >&2
echo "ok: sweep array"

wait_queue() { # wait_queue LOGS...: until the queue is empty; bounded
  for ((i = 0; i < 1800; i++)); do
    [[ -z $(timeout 10 squeue -h -o %i 2>/dev/null) ]] && return 0
    sleep 0.1
  done
  dump_logs "$@"
  fail "still queued after 180 s"
}
cat >"$SCRATCH/study.ini" <<'INI'
[sweep]
base = configs/tiny.ini
methods = bbt
seeds = 13, 42
INI
spec=$(bash "$SRC/jobs/sweep.sbatch" --array-spec "$SCRATCH/study.ini" --max-running 1) || fail "--array-spec FILE failed"
[[ $spec == 0-1%1 ]] || fail "--array-spec FILE --max-running 1 gave '$spec', expected 0-1%1"
sjid=$(timeout 60 bash "$SRC/jobs/sweep.sbatch" --submit "$SCRATCH/study.ini" --max-running 1 --parsable \
  "${SBATCH_TEST_OPTS[@]}" -o "$SCRATCH/study-%a.out" 2>"$SCRATCH/submit.err") || { cat "$SCRATCH/submit.err" >&2; fail "--submit failed"; }
throttle=$(job_field "${sjid%%;*}" ArrayTaskThrottle)
[[ $throttle == 1 ]] || fail "the array's ArrayTaskThrottle is '$throttle', expected 1 (%1)"
wait_queue "$SCRATCH"/study-*.out
mapfile -t names < <("$BBT" sweep plan "$SCRATCH/study.ini" | cut -f1)
((${#names[@]} == 2)) || fail "plan has ${#names[@]} runs"
for k in 0 1; do
  run=$SCRATCH/results/${names[k]}/run.h5
  [[ -f $run ]] || { dump_logs "$SCRATCH"/study-*.out; fail "no run file $run"; }
  seed=$([[ $k == 0 ]] && echo 13 || echo 42)
  check_run_file "$run" "$TINY_GENERATIONS" 2 "$seed" || exit 1
  grep -q "sweep element $k of .*study.ini: run ${names[k]}" "$SCRATCH/study-$k.out" || fail "element $k log"
done
sjid=$(timeout 60 bash "$SRC/jobs/sweep.sbatch" --submit "$SCRATCH/study.ini" --parsable \
  "${SBATCH_TEST_OPTS[@]}" -o "$SCRATCH/study-%a.out" 2>>"$SCRATCH/submit.err") || fail "second --submit failed"
wait_queue "$SCRATCH"/study-*.out
for k in 0 1; do
  grep -q "is finished; nothing to do" "$SCRATCH/study-$k.out" || { dump_logs "$SCRATCH/study-$k.out"; fail "resubmitted element $k did not skip its finished run"; }
done
echo "ok: sweep file as one throttled array; resubmission skips finished runs"
