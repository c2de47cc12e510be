# shellcheck shell=bash disable=SC2034
# Shared by jobs/bbt.sbatch, jobs/sweep.sbatch and jobs/local.sh (sourced, not run): site settings,
# the deterministic run name, and the fresh/resume/skip decision for one run file.
# Callers set BBT_ROOT (the repository root) before sourcing.

# Exit code contract with `bbt train`: 0 finished, 75 (EX_TEMPFAIL) checkpointed and wants a requeue.
BBT_EX_TEMPFAIL=75

bbt_log() { echo "bbt-job: $*" >&2; }

# Sources the site file (BBT_SITE_ENV, default jobs/site.env) and fills the defaults of every site
# variable. The file is plain shell: only variable assignments are expected there.
bbt_load_site() {
  local site=${BBT_SITE_ENV:-$BBT_ROOT/jobs/site.env}
  if [[ -f $site ]]; then
    # shellcheck source=/dev/null
    source "$site" || {
      bbt_log "error: sourcing $site failed"
      return 1
    }
  elif [[ -n ${BBT_SITE_ENV:-} ]]; then
    bbt_log "error: BBT_SITE_ENV=$BBT_SITE_ENV does not exist"
    return 1
  fi
  BBT_BIN=${BBT_BIN:-$BBT_ROOT/build/bbt}
  BBT_RESULTS=${BBT_RESULTS:-$BBT_ROOT/results}
  BBT_CONFIG_DIR=${BBT_CONFIG_DIR:-$BBT_ROOT/configs}
  BBT_MAX_REQUEUES=${BBT_MAX_REQUEUES:-50}
  BBT_MODULES=${BBT_MODULES:-}
  BBT_MODEL=${BBT_MODEL:-}
  return 0
}

# `module load $BBT_MODULES` where the site has environment modules (Lmod or Tcl modules).
bbt_load_modules() {
  [[ -n $BBT_MODULES ]] || return 0
  if ! type module >/dev/null 2>&1; then
    local init
    for init in /etc/profile.d/lmod.sh /etc/profile.d/modules.sh /usr/share/lmod/lmod/init/bash; do
      # shellcheck source=/dev/null
      [[ -f $init ]] && source "$init" && break
    done
  fi
  type module >/dev/null 2>&1 || {
    bbt_log "error: BBT_MODULES is set but there is no 'module' command"
    return 1
  }
  # shellcheck disable=SC2086 # a list of module names
  module load $BBT_MODULES || {
    bbt_log "error: module load $BBT_MODULES failed"
    return 1
  }
}

# Overrides as "key=value" lines from `--section.key value` / `--section.key=value` arguments.
# Fails on anything that is not an override.
bbt_normalize_overrides() {
  while (($#)); do
    case $1 in
      --*=*)
        echo "${1#--}"
        shift
        ;;
      --*)
        if (($# < 2)); then
          bbt_log "error: override $1 has no value"
          return 2
        fi
        echo "${1#--}=$2"
        shift 2
        ;;
      *)
        bbt_log "error: expected --section.key value, got '$1'"
        return 2
        ;;
    esac
  done
}

# The run name of CONFIG + overrides, the same on every submission so a resubmitted or requeued job
# finds its run file. bbt computes it (bbt::io::run_name: an explicit output.run_name wins; else
# <config basename>, -s<task.split_seed>, -c<cma.seed>, -<crc32> of the other overrides); it reads
# no model and not even the config file.
bbt_run_name() {
  local config=$1 line
  shift
  bbt_normalize_overrides "$@" >/dev/null || return 2
  # An explicit output.run_name is the name (as bbt says; a sweep plan's lines carry one): no bbt start.
  while IFS= read -r line; do
    if [[ $line == output.run_name=?* ]]; then
      echo "${line#output.run_name=}"
      return 0
    fi
  done < <(bbt_normalize_overrides "$@")
  "$BBT_BIN" train --print-run-name --config "$config" "$@" || {
    bbt_log "error: $BBT_BIN train --print-run-name failed"
    return 2
  }
}

# The results dir a run goes to: output.dir from the overrides, else BBT_RESULTS.
bbt_results_dir() {
  local line dir=$BBT_RESULTS
  while IFS= read -r line; do
    [[ $line == output.dir=* ]] && dir=${line#output.dir=}
  done < <(bbt_normalize_overrides "$@")
  echo "$dir"
}

# State of a run file: none | partial (no checkpoint yet) | checkpoint | finished. bbt reads it
# itself: HDF5 1.10's h5ls cannot open the file of a killed job (still flagged for SWMR writing).
bbt_run_state() {
  local f=$1 state
  [[ -e $f ]] || {
    echo none
    return
  }
  state=$("$BBT_BIN" report --state "$f" 2>/dev/null) || state=checkpoint # unreadable: let bbt decide
  echo "$state"
}

# Decides what to run for CONFIG + overrides. Sets BBT_RUN_NAME, BBT_RUN_FILE and the array
# BBT_TRAIN_ARGS (the arguments after the binary). Returns 0 to run, 3 when the run is already finished,
# 2 on bad usage. A run file without a checkpoint is kept aside as run.h5.partial-<time> and restarted.
bbt_prepare_run() {
  local config=$1
  shift
  if [[ ! -f $config ]]; then
    bbt_log "error: config file '$config' does not exist"
    return 2
  fi
  config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")
  bbt_normalize_overrides "$@" >/dev/null || return 2
  BBT_RUN_NAME=$(bbt_run_name "$config" "$@") || return 2
  local dir
  dir=$(bbt_results_dir "$@")
  mkdir -p "$dir" || return 2
  dir=$(cd "$dir" && pwd)
  BBT_RUN_FILE=$dir/$BBT_RUN_NAME/run.h5
  local state
  state=$(bbt_run_state "$BBT_RUN_FILE")
  case $state in
    finished)
      bbt_log "$BBT_RUN_FILE is finished; nothing to do (remove it to run again)"
      return 3
      ;;
    checkpoint)
      bbt_log "resuming $BBT_RUN_FILE from its last checkpoint"
      BBT_TRAIN_ARGS=(train --resume "$BBT_RUN_FILE")
      return 0
      ;;
    partial)
      local aside
      aside=$BBT_RUN_FILE.partial-$(date +%Y%m%dT%H%M%S)
      bbt_log "$BBT_RUN_FILE has no checkpoint; keeping it as $aside and starting afresh"
      mv "$BBT_RUN_FILE" "$aside" || return 2
      ;;
  esac
  bbt_log "starting run $BBT_RUN_NAME -> $BBT_RUN_FILE"
  # Overrides go on as --key=value; output.dir and output.run_name are ours, BBT_MODEL fills model.path.
  BBT_TRAIN_ARGS=(train --config "$config")
  local line have_model=0
  while IFS= read -r line; do
    case $line in
      '' | output.dir=* | output.run_name=*) continue ;;
      model.path=*) have_model=1 ;;
    esac
    BBT_TRAIN_ARGS+=("--$line")
  done < <(bbt_normalize_overrides "$@")
  if [[ -n $BBT_MODEL && $have_model == 0 ]]; then BBT_TRAIN_ARGS+=("--model.path=$BBT_MODEL"); fi
  BBT_TRAIN_ARGS+=("--output.dir=$dir" "--output.run_name=$BBT_RUN_NAME")
  return 0
}

# The sweep's task and seed lists (TASKS, SEEDS: space-separated; defaults: the paper's 7 tasks x 3 seeds).
bbt_sweep_lists() {
  read -r -a BBT_SWEEP_TASKS <<<"${TASKS:-sst2 yelp_polarity ag_news dbpedia mrpc snli rte}"
  read -r -a BBT_SWEEP_SEEDS <<<"${SEEDS:-13 42 100}"
  BBT_SWEEP_SIZE=$((${#BBT_SWEEP_TASKS[@]} * ${#BBT_SWEEP_SEEDS[@]}))
}

# True when FILE is a sweep file (configs/sweeps/*.ini: it has a [sweep] section), not a configuration.
bbt_is_sweep() {
  [[ -f $1 ]] && grep -Eq '^[[:space:]]*\[sweep\][[:space:]]*$' "$1"
}

# The runs of a sweep file (`bbt sweep plan FILE`, which checks every key) into the array BBT_PLAN,
# one line per run. Returns 2 when bbt refuses the file (its one-line error is on stderr).
bbt_load_plan() {
  local out
  out=$("$BBT_BIN" sweep plan "$1") || return 2
  BBT_PLAN=()
  [[ -n $out ]] && mapfile -t BBT_PLAN <<<"$out"
  return 0
}

# Splits one plan line (NAME, --config=FILE, overrides; tab-separated) into BBT_PLAN_NAME and
# BBT_PLAN_ARGS (CONFIG then the overrides: what bbt_prepare_run takes).
bbt_plan_line() {
  local -a fields
  IFS=$'\t' read -r -a fields <<<"$1"
  BBT_PLAN_NAME=${fields[0]}
  BBT_PLAN_ARGS=("${fields[1]#--config=}" "${fields[@]:2}")
}
