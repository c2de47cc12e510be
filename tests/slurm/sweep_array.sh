#!/usr/bin/env bash
# jobs/sweep.sbatch as a 2-element job array (one task x split seeds 13, 42): each element writes its own
# run file with its own seed; a dependent job (afterok) runs `sweep.sbatch --report` over both.
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
