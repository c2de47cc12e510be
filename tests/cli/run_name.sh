#!/usr/bin/env bash
# `bbt train --print-run-name` gives exactly the run names jobs/lib.sh computed in bash before it
# asked bbt (resubmitted jobs find their old run files by name). The old functions are kept below,
# verbatim, as the reference.
set -u
fail=0
tmp=${BBT_SCRATCH:-$(mktemp -d)}; mkdir -p "$tmp"
bbt_log() { echo "bbt-job: $*" >&2; }

# --- jobs/lib.sh before the run name moved into bbt (reference; do not edit) ---
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

old_bbt_run_name() {
  local config=$1
  shift
  local lines line key value name seed="" cseed="" rest=()
  lines=$(bbt_normalize_overrides "$@") || return 2
  name=$(basename "$config")
  name=${name%.*}
  while IFS= read -r line; do
    [[ -n $line ]] || continue
    key=${line%%=*}
    value=${line#*=}
    case $key in
      output.run_name)
        echo "$value"
        return 0
        ;;
      task.split_seed) seed=$value ;;
      cma.seed) cseed=$value ;;
      output.* | model.path | model.threads) ;;
      *) rest+=("$line") ;;
    esac
  done <<<"$lines"
  [[ -n $seed ]] && name+="-s$seed"
  [[ -n $cseed ]] && name+="-c$cseed"
  if ((${#rest[@]})); then
    name+=$(printf -- '-%08x' "$(printf '%s\n' "${rest[@]}" | LC_ALL=C sort | cksum | cut -d' ' -f1)")
  fi
  echo "$name"
}
# --- end of reference ---

same() {  # same CONFIG [overrides...]: old bash name == bbt's name
  local want got
  want=$(old_bbt_run_name "$@") || { echo "FAIL: reference failed on $*"; fail=1; return; }
  got=$("$BBT" train --print-run-name --config "$@") || { echo "FAIL: bbt failed on $*"; fail=1; return; }
  if [[ $want == "$got" ]]; then echo "ok: $got"; else echo "FAIL: bash '$want' bbt '$got' for $*"; fail=1; fi
}

same /x/configs/sst2.ini
same /x/configs/sst2.ini --task.split_seed 13
same /x/configs/sst2.ini --task.split_seed=13 --cma.seed 7 --task.split_seed 100
same /x/configs/demo.planted.ini --cma.popsize 8 --loss.type=hinge --model.path /m --model.threads 3 --output.dir /o
same /x/configs/sst2.ini --loss.type=hinge --cma.popsize 8
same /x/configs/sst2 --prompt.mode cat --task.template $'{prompt} {text}\nIt was <mask> .' --cma.seed=
same /x/configs/sst2.ini --output.run_name mine --task.split_seed 1
same /x/configs/sst2.ini --task.split_seed 1 --output.run_name=a=b --output.run_name other
same /x/configs/rte.ini --task.verbalizer 'é,ü' --a.b Z --a.b y --A.c 1 --cma.budget=16000 --eval.test false
same /x/configs/.ini --task.name rte
same "$BBT_SOURCE_DIR/configs/sst2.ini" --task.split_seed 42 --cma.sigma0 0.5 --output.checkpoint_every 1

# bbt needs no readable config and loads no model for this; a dangling override is an error, as before.
"$BBT" train --print-run-name --config /x/configs/sst2.ini --cma.popsize >/dev/null 2>&1 &&
  { echo "FAIL: an override without a value was accepted"; fail=1; }
exit $fail
