#!/usr/bin/env bash
# A real single-node SLURM (munged + slurmctld + slurmd) under one temp dir, for tests and try-outs.
#
#   eval "$(scripts/slurm_local.sh start [DIR])"   # starts it; prints `export SLURM_CONF=...; export BBT_SLURM_DIR=...`
#   scripts/slurm_local.sh env  [DIR]              # prints the same exports again
#   scripts/slurm_local.sh stop [DIR]              # cancels its jobs, stops every daemon it started (idempotent)
#
# DIR defaults to $BBT_SLURM_DIR (start: a new mktemp dir). Everything lives in DIR: its own munged socket
# and key copy, free TCP ports, state, spool, logs, pid files; nothing outside DIR is touched, so it
# coexists with a system SLURM/munge and with other instances. Recipe: /work/shared/slurm-local.md.
# Needs root (slurmd runs jobs as any user) and the Debian packages slurmctld slurmd slurm-client munge.
# Knobs: BBT_SLURM_CPUS (CPUs the node claims, default 4, so 2-4 MPI ranks fit on a small machine),
# BBT_SLURM_START_TIMEOUT (seconds to wait for the node to be idle, default 60).
set -uo pipefail

cpus=${BBT_SLURM_CPUS:-4}
start_timeout=${BBT_SLURM_START_TIMEOUT:-60}

log() { echo "slurm_local: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

usage() {
  sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# The instance dir for env/stop: argument, else $BBT_SLURM_DIR, else the dir of $SLURM_CONF if it is ours.
resolve_dir() {
  local d=${1:-${BBT_SLURM_DIR:-}}
  if [[ -z $d && -n ${SLURM_CONF:-} && -f $(dirname "$SLURM_CONF")/.bbt-slurm-local ]]; then
    d=$(dirname "$SLURM_CONF")
  fi
  [[ -n $d ]] || die "no instance dir: pass DIR or set BBT_SLURM_DIR"
  echo "$d"
}

print_env() {
  local d=$1
  printf 'export SLURM_CONF=%q\nexport BBT_SLURM_DIR=%q\n' "$d/slurm.conf" "$d"
}

# Two free TCP ports (controller, node daemon) chosen by the kernel, so parallel instances never clash.
free_ports() {
  /usr/bin/python3 - <<'EOF'
import socket
socks = []
for _ in range(2):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

pid_alive() { [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; }

# Waits up to $2 seconds (tenths) for command $3... to succeed.
wait_for() {
  local what=$1 secs=$2
  shift 2
  local i
  for ((i = 0; i < secs * 10; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  log "timed out after ${secs}s waiting for $what"
  return 1
}

node_idle() { [[ $(timeout 5 sinfo -h -o %T 2>/dev/null | head -1) == idle ]]; }

cmd_start() {
  local d=${1:-${BBT_SLURM_DIR:-}}
  [[ $(id -u) -eq 0 ]] || die "must run as root (slurmd and munged need it)"
  local b
  for b in munged slurmctld slurmd sinfo; do command -v "$b" >/dev/null || die "$b not found (install slurmctld slurmd slurm-client munge)"; done
  if [[ -z $d ]]; then
    d=$(mktemp -d /tmp/bbt-slurm.XXXXXX) || die "mktemp failed"
  fi
  mkdir -p "$d" || die "cannot create $d"
  d=$(cd "$d" && pwd)
  if [[ -f $d/run/slurmctld.pid ]] && pid_alive "$(cat "$d/run/slurmctld.pid")"; then
    die "an instance is already running in $d (stop it first)"
  fi
  touch "$d/.bbt-slurm-local"
  # The munge user must traverse the dir to reach its own subdir.
  chmod 755 "$d"
  mkdir -p "$d"/{state,spool,run,log,munge}
  { chown munge:munge "$d/munge" && chmod 755 "$d/munge"; } || die "cannot prepare $d/munge"

  # munged: own key copy, socket, pid, log and seed file. It refuses to run as root, so run as munge.
  local key=$d/munge/munge.key
  if [[ -r /etc/munge/munge.key ]]; then
    cp /etc/munge/munge.key "$key"
  else
    dd if=/dev/urandom of="$key" bs=128 count=1 status=none
  fi
  chown munge:munge "$key" && chmod 400 "$key"
  local sock=$d/munge/munge.socket
  runuser -u munge -- munged --socket="$sock" --key-file="$key" --pid-file="$d/munge/munged.pid" \
    --log-file="$d/munge/munged.log" --seed-file="$d/munge/munged.seed" </dev/null >>"$d/log/munged.out" 2>&1 ||
    die "munged failed to start: $(tail -3 "$d/munge/munged.log" "$d/log/munged.out" 2>/dev/null)"
  wait_for "munged socket" 10 test -S "$sock" || die "munged did not come up (see $d/munge/munged.log)"
  cp "$d/munge/munged.pid" "$d/run/munged.pid" 2>/dev/null

  local host ports ctl_port node_port mem
  host=$(hostname -s)
  ports=$(free_ports) || die "could not find free ports"
  read -r ctl_port node_port <<<"$ports"
  mem=$(slurmd -C 2>/dev/null | head -1 | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
  mem=${mem:-1000}
  cat >"$d/slurm.conf" <<EOF
# Written by scripts/slurm_local.sh: a throw-away single-node cluster in $d.
ClusterName=bbtlocal
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctl_port
SlurmdPort=$node_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock,cred_expire=10
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/run/slurmctld.pid
SlurmdPidFile=$d/run/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
ReturnToService=2
MinJobAge=4
KillWait=5
MessageTimeout=5
SlurmdParameters=config_overrides
NodeName=$host CPUs=$cpus RealMemory=$mem NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF=$d/slurm.conf
  # -i: ignore state left in a reused dir. stdio away from the caller's pipes so a test harness never waits on them.
  slurmctld -i -f "$SLURM_CONF" </dev/null >>"$d/log/slurmctld.out" 2>&1 || {
    cmd_stop "$d" >/dev/null 2>&1
    die "slurmctld failed to start: $(tail -5 "$d/log/slurmctld.log" 2>/dev/null)"
  }
  slurmd -f "$SLURM_CONF" -N "$host" </dev/null >>"$d/log/slurmd.out" 2>&1 || {
    cmd_stop "$d" >/dev/null 2>&1
    die "slurmd failed to start: $(tail -5 "$d/log/slurmd.log" 2>/dev/null)"
  }
  if ! wait_for "node $host idle" "$start_timeout" node_idle; then
    log "slurmctld.log tail:"
    tail -5 "$d/log/slurmctld.log" >&2
    log "slurmd.log tail:"
    tail -5 "$d/log/slurmd.log" >&2
    cmd_stop "$d" >/dev/null 2>&1
    die "SLURM did not become idle"
  fi
  log "up in $d (node $host, $cpus CPUs, ports $ctl_port/$node_port)"
  print_env "$d"
}

# Processes that hold a file under DIR open (slurmstepd keeps the slurmd log, jobs their spool files).
pids_using_dir() {
  local d=$1 p fd
  for p in /proc/[0-9]*; do
    [[ ${p#/proc/} == "$$" ]] && continue
    for fd in "$p"/fd/*; do
      if [[ $(readlink "$fd" 2>/dev/null) == "$d"/* ]]; then
        echo "${p#/proc/}"
        break
      fi
    done
  done
}

# TERM, wait up to 10 s, then KILL each pid (by id only).
stop_pids() {
  local p i alive
  for p in "$@"; do pid_alive "$p" && kill -TERM "$p" 2>/dev/null; done
  for ((i = 0; i < 100; i++)); do
    alive=0
    for p in "$@"; do pid_alive "$p" && alive=1; done
    ((alive)) || return 0
    sleep 0.1
  done
  for p in "$@"; do pid_alive "$p" && kill -KILL "$p" 2>/dev/null; done
  sleep 0.2
}

cmd_stop() {
  local d
  d=$(resolve_dir "${1:-}") || exit 1
  [[ -d $d ]] || {
    log "nothing to stop in $d"
    return 0
  }
  d=$(cd "$d" && pwd)
  [[ -f $d/.bbt-slurm-local ]] || die "$d was not made by slurm_local.sh; refusing to touch it"
  export SLURM_CONF=$d/slurm.conf
  local ctl
  ctl=$(cat "$d/run/slurmctld.pid" 2>/dev/null)
  if pid_alive "$ctl"; then
    # Cancel jobs first so slurmd reaps their steps; bounded wait.
    timeout 10 scancel --full -s KILL -u root >/dev/null 2>&1
    wait_for "jobs to end" 10 bash -c '[[ -z $(timeout 5 squeue -h -o %i 2>/dev/null) ]]' || true
  fi
  local f pids=()
  for f in slurmd slurmctld munged; do
    [[ -f $d/run/$f.pid ]] && pids+=("$(cat "$d/run/$f.pid")")
  done
  ((${#pids[@]})) && stop_pids "${pids[@]}"
  # Leftover step daemons or job processes still holding files in DIR.
  local rest
  mapfile -t rest < <(pids_using_dir "$d")
  if ((${#rest[@]})); then
    log "stopping leftover processes ${rest[*]}"
    stop_pids "${rest[@]}"
  fi
  rm -f "$d"/run/*.pid
  log "stopped $d"
}

case ${1:-} in
  start) cmd_start "${2:-}" ;;
  stop) cmd_stop "${2:-}" ;;
  env) print_env "$(resolve_dir "${2:-}")" ;;
  *) usage ;;
esac
