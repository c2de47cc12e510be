#!/usr/bin/env bash
# The same configuration gives the same run whatever the rank count: -np 1, 2 and 3 agree bit for
# bit. Work is split in fixed chunks of (candidate, example) pairs, each candidate's prompt is
# projected on its own, and every rank runs the same number of threads (one), so every logit, and
# with them the whole run, is the same bits. CTest runs this once per OpenBLAS kernel set.
source "$(dirname "$0")/common.bash"
make_tiny m
write_config c.ini "$PWD/m" 300
for n in 1 2 3; do
  timeout 300 mpirun -np $n "$BBT" train --config c.ini --output.run_name np$n >np$n.log 2>&1
  check "mpirun -np $n finishes" test $? -eq 0
done
check "3 ranks wrote all 30 generations" \
  test "$(h5 results/np3/run.h5 'len(f["train/generation"])')" = 30
check "n_ranks recorded" test "$(h5 results/np3/run.h5 'f.attrs["n_ranks"]')" = 3
check "-np 1 and -np 2 agree" same_run results/np1/run.h5 results/np2/run.h5 0
check "-np 1 and -np 3 agree" same_run results/np1/run.h5 results/np3/run.h5 0
# Network load: rank 0 receives every other rank's logits, bytes add up across ranks.
check "bytes sent by workers = bytes received by rank 0" test "$(h5 results/np3/run.h5 \
  'int(f["train/bytes_received"][0,0] == f["train/bytes_sent"][0,1:].sum())')" = 1
# Each rank's own clocks, every generation: forward seconds and seconds inside MPI calls (the wait
# for rank 0's next command included), since its previous report. Rank 0's forward clock holds at
# least the training forward; the clocks restart at every report, so a worker's forward + MPI time
# never exceeds the two generations its interval overlaps (with slack for the writes in between;
# clocks that kept counting would exceed that bound within a few generations).
rank_clocks_ok() {
  "$PYTHON" - "$1" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r", swmr=True)
fw, cm = f["train/seconds_forward_ranks"][:], f["train/seconds_comm_ranks"][:]
tot, fw0 = f["train/seconds_total"][:], f["train/seconds_forward"][:]
checks = {
    "shape [30, 3]": fw.shape == (30, 3) and cm.shape == (30, 3),
    "finite, >= 0": bool(np.isfinite(fw).all() and np.isfinite(cm).all() and (fw >= 0).all() and (cm >= 0).all()),
    "every rank computed every generation": bool((fw > 0).all()),
    "workers waited in MPI every generation": bool((cm[:, 1:] > 0).all()),
    "rank 0's clock covers its training forward": bool((fw[:, 0] >= fw0).all()),
    "clocks restart": bool(((fw + cm)[1:, 1:] <= 1.5 * (tot[:-1] + tot[1:])[:, None] + 0.1).all()),
}
for name, good in checks.items():
    if not good:
        print("  clocks:", name, "failed")
sys.exit(0 if all(checks.values()) else 1)
PY
}
check "per-rank forward and MPI seconds in the run file" rank_clocks_ok results/np3/run.h5
# The cost columns (the paper's Table 4): each rank's peak resident memory (a replica is tens of
# megabytes at least, never the machine), no device memory on CPU, the calls spent, the subspace's
# parameters, and totals that are per-query bytes times the calls.
check "costs: peak RSS per rank, calls, tuned parameters, byte totals" test "$(h5 results/np3/run.h5 \
  'int(f["cost/peak_rss_bytes"].shape == (3,) and (f["cost/peak_rss_bytes"][()] > 2e7).all()
       and (f["cost/peak_rss_bytes"][()] < 2e10).all() and (f["cost/peak_device_bytes"][()] == 0).all()
       and f["cost/api_calls"][()] == f["train/api_calls"][-1] == 300 and f["cost/tuned_parameters"][()] == 20
       and f["cost/bytes_up_total"][()] == 300 * f["cost/bytes_up_per_query"][()] == 300 * 8 * 20
       and f["cost/bytes_down_total"][()] == 300 * f["cost/bytes_down_per_query"][()] > 0)')" = 1
# The shipped demo configuration (popsize 20, k_shot 32, hidden 64), shortened to 12 generations
# with dev selection every 3: -np 1, 2 and 3 agree bit for bit there too.
"$BBT" make-tiny-model --out demo-model --layers 2 --hidden 64 --heads 4 --intermediate 128 --seed 1 \
  --init-std 0.1 >/dev/null
for n in 1 2 3; do
  timeout 300 mpirun -np $n "$BBT" train --config "$BBT_SOURCE_DIR/configs/demo.ini" --model.path demo-model \
    --cma.budget 240 --eval.every 60 --output.dir results --output.run_name demo$n >demo$n.log 2>&1
  check "demo configuration, mpirun -np $n finishes" test $? -eq 0
done
check "demo configuration: -np 1 and -np 2 agree" same_run results/demo1/run.h5 results/demo2/run.h5 0
check "demo configuration: -np 1 and -np 3 agree" same_run results/demo1/run.h5 results/demo3/run.h5 0
# bbt eval re-scores the kept prompt: the same numbers the run stored (2 ranks share the examples).
ev=$(timeout 120 mpirun -np 2 "$BBT" eval --run results/np1/run.h5)
check "bbt eval reproduces /test/metric" same_value "$ev" results/np1/run.h5 test/metric
ev=$(timeout 120 "$BBT" eval --run results/np1/run.h5 --split dev)
check "bbt eval --split dev reproduces /best/dev_metric" same_value "$ev" results/np1/run.h5 best/dev_metric
exit $fail
