#!/usr/bin/env bash
# The cluster jobs' runs on a workstation with plain mpirun: same run names, same results layout, same
# automatic resume (and skip when finished), so a run can move between a laptop and the cluster.
#
#   jobs/local.sh [-n N] CONFIG [--section.key value ...]   # one run with N ranks (default 1)
#   jobs/local.sh [-n N] SWEEP.ini                          # every run of a sweep file (bbt sweep plan), in order
#   jobs/local.sh [-n N] --sweep [--section.key value ...]  # TASKS x SEEDS one after another (see sweep.sbatch)
#
# N defaults to $BBT_NP (else 1). A sweep skips finished runs, resumes checkpointed ones, goes on past a
# failed run (exit code 1 at the end, naming how many failed) and stops at a signal (exit 75).
# Ctrl-C, SIGTERM or SIGUSR1 ask bbt to checkpoint (USR1 to the ranks); it exits 75 and running the same
# command again resumes. Site variables (BBT_BIN, BBT_RESULTS, BBT_MODEL, ...) come from jobs/site.env
# as for the batch jobs; BBT_MPIRUN_ARGS adds mpirun options. Exit code: bbt's (0 finished, 75 checkpointed).
set -uo pipefail

BBT_ROOT=${BBT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
# shellcheck source=jobs/lib.sh
source "$BBT_ROOT/jobs/lib.sh"

usage() {
  sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

np=${BBT_NP:-1}
sweep=0
while (($#)); do
  case $1 in
    -n | --np)
      (($# >= 2)) || usage
      np=$2
      shift 2
      ;;
    -n*)
      np=${1#-n}
      shift
      ;;
    --sweep)
      sweep=1
      shift
      ;;
    -h | --help) usage ;;
    *) break ;;
  esac
done
[[ $np =~ ^[1-9][0-9]*$ ]] || {
  bbt_log "error: -n wants a positive rank count, got '$np'"
  exit 2
}
((sweep || $# >= 1)) || usage

bbt_load_site || exit 2
bbt_load_modules || exit 2
[[ -x $BBT_BIN ]] || {
  bbt_log "error: bbt binary '$BBT_BIN' is not executable (build it, or set BBT_BIN)"
  exit 2
}

mpirun_args=(-np "$np")
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
# bbt's own one-line error is the whole story: no Open MPI banners around it (README "Under mpirun";
# set OMPI_MCA_orte_execute_quiet=0 to see them when debugging Open MPI itself).
export OMPI_MCA_orte_execute_quiet=${OMPI_MCA_orte_execute_quiet:-1}
((np > $(nproc))) && mpirun_args+=(--oversubscribe)
# shellcheck disable=SC2206 # BBT_MPIRUN_ARGS: extra mpirun options, split on spaces
mpirun_args+=(${BBT_MPIRUN_ARGS:-})

child=""
n_signals=0
on_signal() {
  n_signals=$((n_signals + 1))
  bbt_log "got SIG$1; asking bbt to checkpoint"
  # mpirun forwards USR1 to every rank.
  [[ -n $child ]] && kill -USR1 "$child" 2>/dev/null
}
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal USR1' USR1

# One run: fresh, resumed or skipped. Returns bbt's exit code.
run_one() {
  bbt_prepare_run "$@"
  case $? in
    0) ;;
    3) return 0 ;;
    *) return 2 ;;
  esac
  bbt_log "mpirun ${mpirun_args[*]} $BBT_BIN ${BBT_TRAIN_ARGS[*]}"
  # setsid: Ctrl-C reaches only this script, which turns it into a checkpoint request.
  setsid mpirun "${mpirun_args[@]}" "$BBT_BIN" "${BBT_TRAIN_ARGS[@]}" </dev/null &
  child=$!
  local rc before
  while :; do
    before=$n_signals
    wait "$child"
    rc=$?
    ((n_signals != before)) || break
  done
  child=""
  if ((rc == BBT_EX_TEMPFAIL)); then
    bbt_log "checkpointed $BBT_RUN_FILE; run the same command again to resume"
  elif ((rc != 0)); then
    bbt_log "bbt failed with exit code $rc"
  fi
  return "$rc"
}

if ((!sweep)) && bbt_is_sweep "$1"; then
  (($# == 1)) || {
    bbt_log "error: a sweep file takes no overrides on the command line (put them under its [set])"
    exit 2
  }
  bbt_load_plan "$1" || exit 2
  n_runs=${#BBT_PLAN[@]}
  n_failed=0
  for ((i = 0; i < n_runs; i++)); do
    bbt_plan_line "${BBT_PLAN[i]}"
    bbt_log "sweep run $((i + 1))/$n_runs: $BBT_PLAN_NAME"
    run_one "${BBT_PLAN_ARGS[@]}"
    rc=$?
    ((n_signals == 0)) || exit "$BBT_EX_TEMPFAIL"
    ((rc == 0)) || n_failed=$((n_failed + 1))
  done
  if ((n_failed)); then
    bbt_log "$n_failed of $n_runs runs failed (their errors above); run the same command again to retry them"
    exit 1
  fi
  bbt_log "all $n_runs runs of $1 are finished"
  exit 0
fi

if ((sweep)); then
  bbt_sweep_lists
  for task in "${BBT_SWEEP_TASKS[@]}"; do
    for seed in "${BBT_SWEEP_SEEDS[@]}"; do
      run_one "$BBT_CONFIG_DIR/$task.ini" "$@" --task.split_seed "$seed" || exit $?
      ((n_signals == 0)) || exit "$BBT_EX_TEMPFAIL"
    done
  done
  exit 0
fi
run_one "$@"
exit $?
