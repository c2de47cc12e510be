#!/usr/bin/env bash
# jobs/bbt.sbatch on a real single-node SLURM: 2 MPI ranks on CPU via srun --mpi=pmix; the run file has
# every generation and a test metric. Resubmitting the same command finds the finished run and does nothing.
source "$(dirname "${BASH_SOURCE[0]}")/helpers.bash"
rm -rf "$SCRATCH" && mkdir -p "$SCRATCH"
start_slurm
make_tiny_config 6
write_site_env

log=$SCRATCH/job.out
run=$SCRATCH/results/tiny-s13/run.h5 # run name: config basename + -s<split seed>
timeout 180 sbatch --wait "${SBATCH_TEST_OPTS[@]}" -o "$log" "$SRC/jobs/bbt.sbatch" "$TINY_CONFIG" \
  --task.split_seed 13 >/dev/null
rc=$?
((rc == 0)) || { dump_logs "$log"; fail "job exited with $rc"; }
[[ -f $run ]] || { dump_logs "$log"; fail "no run file at $run"; }
check_run_file "$run" "$TINY_GENERATIONS" 2 13 || exit 1
grep -q "starting run tiny-s13" "$log" || fail "job log lacks the start line"

# Same submission again: the run is finished, so nothing runs and the file is untouched.
sum=$(md5sum <"$run")
timeout 60 sbatch --wait "${SBATCH_TEST_OPTS[@]}" -o "$log.2" "$SRC/jobs/bbt.sbatch" "$TINY_CONFIG" \
  --task.split_seed 13 >/dev/null || { dump_logs "$log.2"; fail "resubmission failed"; }
grep -q "is finished; nothing to do" "$log.2" || { dump_logs "$log.2"; fail "resubmission did not see the finished run"; }
[[ $(md5sum <"$run") == "$sum" ]] || fail "resubmission changed the finished run file"
echo "ok: single job"
