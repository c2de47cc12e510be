#!/usr/bin/env bash
# scripts/slurm_local.sh: start brings up a working single-node SLURM; stop (twice: idempotent) leaves no
# munged/slurmctld/slurmd/slurmstepd of its own behind, not even with a job still running.
source "$(dirname "${BASH_SOURCE[0]}")/helpers.bash"
skip_unless_root
mkdir -p "$SCRATCH"

# pids of SLURM/munge daemons right now, by process name (read only; we kill by pid file).
daemon_pids() {
  local p
  for p in /proc/[0-9]*; do
    case $(cat "$p/comm" 2>/dev/null) in
      munged | slurmctld | slurmd | slurmstepd) [[ $(awk '{print $3}' "$p/stat" 2>/dev/null) != Z ]] && echo "${p#/proc/}" ;;
    esac
  done | sort
}
before=$(daemon_pids)

start_slurm
[[ $(timeout 10 sinfo -h -o %T) == idle ]] || fail "node not idle after start"
[[ $(timeout 10 sinfo -h -o %c) == 4 ]] || fail "node does not claim 4 CPUs: $(sinfo -h -o %c)"
for f in munged slurmctld slurmd; do
  kill -0 "$(cat "$SLURM_DIR/run/$f.pid")" 2>/dev/null || fail "$f is not running after start"
done
[[ $'\n'$(bash "$SRC/scripts/slurm_local.sh" env "$SLURM_DIR")$'\n' == *$'\n'"export SLURM_CONF=$SLURM_DIR/slurm.conf"$'\n'* ]] || fail "env"

# A real job runs (its output is checked, not only sbatch's exit code), 4 tasks fit.
timeout 60 sbatch --wait -n 4 -o "$SCRATCH/hello.out" --wrap 'srun -n 4 hostname' >/dev/null || fail "hello job failed"
[[ $(grep -c . "$SCRATCH/hello.out") == 4 ]] || fail "hello job printed: $(cat "$SCRATCH/hello.out")"

# A job still running at stop time is ended too.
rm -f "$SCRATCH/sleeper.pid"
sbatch -n 1 -o /dev/null --wrap "echo \$\$ > $SCRATCH/sleeper.pid; exec sleep 300" >/dev/null || fail "sbatch sleeper"
for ((i = 0; i < 100; i++)); do [[ -s $SCRATCH/sleeper.pid ]] && break; sleep 0.1; done
sleeper=$(cat "$SCRATCH/sleeper.pid" 2>/dev/null) || fail "sleeper job did not start"

start_s=$SECONDS
timeout 60 bash "$SRC/scripts/slurm_local.sh" stop "$SLURM_DIR" || fail "stop failed"
timeout 60 bash "$SRC/scripts/slurm_local.sh" stop "$SLURM_DIR" || fail "second stop failed"
note "stop took $((SECONDS - start_s)) s"
kill -0 "$sleeper" 2>/dev/null && fail "job process $sleeper survived stop"
after=$(daemon_pids)
leftover=$(comm -13 <(echo "$before") <(echo "$after") | grep .)
[[ -z $leftover ]] || fail "daemons left after stop: $(for p in $leftover; do echo "$p:$(cat /proc/$p/comm)"; done)"
echo "ok: start, jobs, stop; nothing left"
