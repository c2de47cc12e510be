#!/usr/bin/env bash
# The pre-timeout signal path of jobs/bbt.sbatch on a real SLURM. `scancel --signal=USR1 --batch` sends
# exactly what `#SBATCH --signal=B:USR1@300` sends before the time limit: the batch shell forwards it to
# the ranks, bbt checkpoints and exits 75, the job requeues itself and the next run resumes. Then the
# run file holds generations 0..G-1 exactly once (nothing lost, nothing twice) and a test metric.
# Part B: with requeueing disabled (BBT_MAX_REQUEUES=0) the job ends with 75 and resubmitting the same
# command resumes the run.
source "$(dirname "${BASH_SOURCE[0]}")/helpers.bash"
rm -rf "$SCRATCH" && mkdir -p "$SCRATCH"
start_slurm
# Long enough that the signal lands mid-run (a generation of the tiny model takes milliseconds).
make_tiny_config "${BBT_SLURM_TEST_GENERATIONS:-400}"
write_site_env
G=$TINY_GENERATIONS

# Waits (bounded) until the run file has >= 3 generations; fails if the job ends first.
wait_mid_run() {
  local jid=$1 run=$2 log=$3 i
  for ((i = 0; i < 1200; i++)); do
    (($(generations_so_far "$run") >= 3)) && return 0
    [[ -z $(job_field "$jid" JobState) || $(job_field "$jid" JobState) == COMPLETED ]] && break
    sleep 0.1
  done
  dump_logs "$log"
  fail "job $jid never got to generation 3 while running"
}

# How often job $1 has been requeued (0 when unknown).
restarts() {
  local n
  n=$(job_field "$1" Restarts)
  echo "${n:-0}"
}

# Waits (bounded) until job $1 has left the queue.
wait_gone() {
  local i
  for ((i = 0; i < 1800; i++)); do
    [[ -z $(timeout 10 squeue -h -j "$1" -o %i 2>/dev/null) ]] && return 0
    sleep 0.1
  done
  return 1
}

# --- A: signal, self-requeue, resume.
log=$SCRATCH/requeue.out
run=$SCRATCH/results/tiny-s13/run.h5
jid=$(timeout 30 sbatch --parsable "${SBATCH_TEST_OPTS[@]}" -o "$log" "$SRC/jobs/bbt.sbatch" "$TINY_CONFIG" \
  --task.split_seed 13) || fail "sbatch failed"
wait_mid_run "$jid" "$run" "$log"
timeout 10 scancel --signal=USR1 --batch "$jid" || fail "scancel --signal=USR1 --batch failed"
for ((i = 0; i < 600; i++)); do
  (($(restarts "$jid") >= 1)) && break
  grep -q "bbt exited with" "$log" && ! grep -q "bbt exited with 75" "$log" && { dump_logs "$log"; fail "the run finished before the signal arrived: raise BBT_SLURM_TEST_GENERATIONS"; }
  sleep 0.1
done
(($(restarts "$jid") >= 1)) || { dump_logs "$log"; fail "job $jid was not requeued"; }
# SLURM holds a requeued job (Reason=BeginTime) until its old credential expires: cred_expire, 120 s
# by default, 10 s in scripts/slurm_local.sh. Releasing it earlier makes slurmd refuse the launch
# ("Job credential revoked"). Done when the second run has reported its exit and the job has left.
for ((i = 0; i < 1800; i++)); do
  (($(grep -c "bbt exited with" "$log") >= 2)) && [[ -z $(timeout 10 squeue -h -j "$jid" -o %i 2>/dev/null) ]] && break
  sleep 0.1
done
(($(grep -c "bbt exited with" "$log") >= 2)) || { dump_logs "$log"; fail "requeued job $jid did not run again within 180 s"; }
grep -q "got SIGUSR1" "$log" || { dump_logs "$log"; fail "batch shell did not get USR1"; }
grep -q "bbt exited with 75" "$log" || { dump_logs "$log"; fail "bbt did not exit 75 after USR1"; }
grep -q "requeued job $jid" "$log" || { dump_logs "$log"; fail "job did not requeue itself"; }
grep -q "resuming $run" "$log" || { dump_logs "$log"; fail "requeued job did not resume"; }
grep -q "bbt exited with 0" "$log" || { dump_logs "$log"; fail "resumed run did not finish"; }
check_run_file "$run" "$G" 2 13 || { dump_logs "$log"; exit 1; }

# --- B: no requeue (BBT_MAX_REQUEUES=0): exit 75, then a resubmission resumes.
log=$SCRATCH/resubmit.out
run=$SCRATCH/results/tiny-s42/run.h5
jid=$(BBT_MAX_REQUEUES=0 timeout 30 sbatch --parsable "${SBATCH_TEST_OPTS[@]}" -o "$log" "$SRC/jobs/bbt.sbatch" \
  "$TINY_CONFIG" --task.split_seed 42) || fail "sbatch failed"
wait_mid_run "$jid" "$run" "$log"
timeout 10 scancel --signal=USR1 --batch "$jid" || fail "scancel failed"
wait_gone "$jid" || fail "job $jid did not end after USR1"
grep -q "not requeueing" "$log" || { dump_logs "$log"; fail "BBT_MAX_REQUEUES=0 did not stop the requeue"; }
n=$(generations_so_far "$run")
((n > 0 && n < G)) || fail "after the signal the run has $n of $G generations"
timeout 180 sbatch --wait "${SBATCH_TEST_OPTS[@]}" -o "$log.2" "$SRC/jobs/bbt.sbatch" "$TINY_CONFIG" \
  --task.split_seed 42 >/dev/null || { dump_logs "$log.2"; fail "resubmitted job failed"; }
grep -q "resuming $run" "$log.2" || { dump_logs "$log.2"; fail "resubmission did not resume"; }
check_run_file "$run" "$G" 2 42 || { dump_logs "$log.2"; exit 1; }
echo "ok: signal, checkpoint, requeue/resubmit, resume"
