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
# BBTv2 through the same script: the deep prompt's run file (one part per layer of the 1-layer model).
v2=$SCRATCH/results/tiny-v2/run.h5
timeout 180 sbatch --wait "${SBATCH_TEST_OPTS[@]}" -o "$log.v2" "$SRC/jobs/bbt.sbatch" "$TINY_CONFIG" \
  --method.name bbtv2 --output.run_name tiny-v2 >/dev/null || { dump_logs "$log.v2"; fail "bbtv2 job failed"; }
check_run_file "$v2" "$TINY_GENERATIONS" 2 || exit 1
"$PYTHON" -c 'import sys, h5py; f = h5py.File(sys.argv[1], "r"); assert f.attrs["method"] == "bbtv2" and f["best/prompt"].shape == (1, 5, 32), (dict(f.attrs), f["best/prompt"].shape)' "$v2" ||
  { dump_logs "$log.v2"; fail "bbtv2 run file lacks its deep prompt"; }
# A baseline method through the same script (the paper's feature-MLP): 2 ranks compute the features,
# rank 0 trains the head; the run file has the method, a test metric and each rank's peak memory.
mlp=$SCRATCH/results/tiny-mlp/run.h5
timeout 180 sbatch --wait "${SBATCH_TEST_OPTS[@]}" -o "$log.mlp" "$SRC/jobs/bbt.sbatch" "$TINY_CONFIG" \
  --method.name feature_mlp --classifier.epochs 20 --output.run_name tiny-mlp >/dev/null ||
  { dump_logs "$log.mlp"; fail "feature_mlp job failed"; }
"$PYTHON" - "$mlp" <<'EOF' || { dump_logs "$log.mlp"; fail "feature_mlp run file check failed"; }
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    assert f.attrs["method"] == "feature_mlp" and f["run/finished"][()] == 1, dict(f.attrs)
    assert 0 <= f["test/metric"][()] <= 1 and int(f.attrs["n_ranks"]) == 2
    assert f["cost/peak_rss_bytes"].shape == (2,) and (f["cost/peak_rss_bytes"][()] > 0).all()
    print(f"ok {sys.argv[1]}: feature_mlp, test metric {f['test/metric'][()]:.3f}")
EOF
echo "ok: single job"
