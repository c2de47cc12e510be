#!/usr/bin/env bash
# Thread-count defaults keep their promise: `bbt bench forward` and `bbt train` without a thread
# count use the CPUs the process may run on (its affinity), and say so (the JSON's "threads", the
# log's "thread(s) per rank"); libtorch alone would start with one thread.
set -u
fail=0
tmp=${BBT_SCRATCH:-$(mktemp -d)}
rm -rf "$tmp"; mkdir -p "$tmp"
PY=${PYTHON:-/usr/bin/python3}
cpus=$(nproc)
if [ "$cpus" -lt 2 ]; then echo "skip: needs 2 usable CPUs (has $cpus)"; exit 77; fi
check() { if [ "$2" = "$3" ]; then echo "ok: $1 = $2"; else echo "FAIL: $1 = $2, wanted $3"; fail=1; fi; }

threads_of() { "$PY" -c 'import json,sys; print(json.load(sys.stdin)["threads"])'; }
bench() { "$BBT" bench forward --shape tiny --candidates 1 --examples 2 --repeats 1 "$@" 2>/dev/null; }
check "bench forward threads" "$(bench | threads_of)" "$cpus"
check "bench forward threads under taskset -c 0" "$(taskset -c 0 "$BBT" bench forward --shape tiny --candidates 1 --examples 2 --repeats 1 2>/dev/null | threads_of)" 1
check "bench forward --threads 1" "$(bench --threads 1 | threads_of)" 1

"$BBT" make-tiny-model --out "$tmp/m" --layers 2 --hidden 32 --heads 4 --intermediate 64 --seed 3 --init-std 0.1 >/dev/null
train() {  # train NAME [mpirun args...] : the log's thread count
  local name=$1; shift
  mpirun --oversubscribe "$@" $BBT train --config "$BBT_SOURCE_DIR/configs/demo.ini" --model.path "$tmp/m" \
    --model.threads 0 --task.planted_pool 40 --task.planted_test 4 --task.k_shot 4 --cma.budget 20 \
    --eval.test false --output.dir "$tmp/out" --output.run_name "$name" >"$tmp/$name.log" 2>&1 ||
    { echo "FAIL: train $name: $(tail -3 "$tmp/$name.log")" >&2; }
  sed -n 's/.* rank(s), \([0-9]*\) thread(s) per rank.*/\1/p' "$tmp/$name.log" | head -1
}
check "1 rank" "$(train one -np 1 --bind-to none)" "$cpus"
check "1 rank under taskset -c 0" "$(BBT="taskset -c 0 $BBT" train one_ts -np 1 --bind-to none)" 1
check "2 ranks, unbound" "$(train two -np 2 --bind-to none)" "$((cpus / 2))"
check "2 ranks, one core each" "$(train bound -np 2 --bind-to core)" 1
exit $fail
