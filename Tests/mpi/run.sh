#!/usr/bin/env bash
# Multi-process tests: everything that needs real MPI ranks. Called by `make test`
# after `swift test`; ends with the plain line `mpi: N passed, N failed`.
#
# Every command runs under `timeout`, so a hang is a failure with a name, never a
# stuck CI job.
set -u
cd "$(dirname "$0")/../.."
BIN=${BIN:-.build/release}
MPIRUN=${MPIRUN:-mpirun}
RANKS=${RANKS:-"1 2 3 4 5 6"}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; [ -f "$2" ] && sed 's/^/    | /' "$2" | tail -n 25; }

# run NAME TIMEOUT CMD...: passes when CMD exits 0 within TIMEOUT seconds.
run() {
  local name=$1 limit=$2; shift 2
  local log="$WORK/$(echo "$name" | tr -c 'a-zA-Z0-9' _).log"
  if timeout --kill-after=5 "$limit" "$@" >"$log" 2>&1; then pass "$name"; else fail "$name (exit $?)" "$log"; fi
}

# expect_failure NAME PATTERN CMD...: passes when CMD exits non-zero within 60 s and
# its output names the cause (matches PATTERN).
expect_failure() {
  local name=$1 pattern=$2; shift 2
  local log="$WORK/$(echo "$name" | tr -c 'a-zA-Z0-9' _).log"
  timeout --kill-after=5 60 "$@" >"$log" 2>&1
  local code=$?
  if [ "$code" -eq 124 ] || [ "$code" -eq 137 ]; then fail "$name: hung (killed after 60 s)" "$log"
  elif [ "$code" -eq 0 ]; then fail "$name: exited 0, expected an error" "$log"
  elif ! grep -qE -- "$pattern" "$log"; then fail "$name: exit $code but no message matching '$pattern'" "$log"
  else pass "$name (exit $code)"; fi
}

# section TITLE: starts a group of checks; prints how long the previous one took,
# so a slow CI points at its section.
section_start=$SECONDS
section() {
  [ -n "${section_title:-}" ] && echo "   ($((SECONDS - section_start)) s)"
  section_start=$SECONDS section_title=$1
  [ "$1" = end ] || echo "== $1"
}

section "collectives: every algorithm against MPI_Allreduce"
for p in $RANKS; do
  run "collectives at $p ranks" 300 $MPIRUN -n "$p" "$BIN/chorus-mpi-tests" collectives
done

section "point-to-point and groups: any-source receives, probes, wait-any, splits without a colour, release"
for p in $RANKS; do
  run "point-to-point at $p ranks" 60 $MPIRUN -n "$p" "$BIN/chorus-mpi-tests" point-to-point
done

section "collectives on a simulated cluster: 3 nodes of 2 ranks over TCP, 5 ranks (uneven last node)"
if [ "$(id -u)" -eq 0 ] && ip netns add chorus-probe 2>/dev/null && ip netns delete chorus-probe; then
  NODES=3 RANKS_PER_NODE=2 Benchmarks/cluster/cluster-up.sh >/dev/null
  run "collectives at 5 ranks on 3 simulated nodes" 300 Benchmarks/cluster/cluster-mpirun -n 5 "$BIN/chorus-mpi-tests" collectives
  Benchmarks/cluster/cluster-down.sh >/dev/null
else
  echo "SKIP (needs root and network namespaces)"
fi

section "ranks passing different lengths to one all-reduce: an error naming the ranks, not a hang"
for algorithm in ring hierarchical recursive-doubling shared-memory; do
  for p in 2 3 4; do
    expect_failure "$algorithm, $p ranks, rank 1 one element longer" "disagree on the element count: rank [0-9]+ has [0-9]+, rank [0-9]+ has" \
      $MPIRUN -n "$p" "$BIN/chorus-mpi-tests" mismatched-length "$algorithm"
  done
done

section "allreduce-bench: runs, checks every algorithm, writes the CSV the docs describe"
run "allreduce-bench 3 ranks, 4 B - 256 KiB" 120 $MPIRUN -n 3 "$BIN/allreduce-bench" --min-bytes 4 --max-bytes 256K \
  --step-factor 8 --iterations 4 --rounds 2 --csv "$WORK/bench.csv"
run "bench CSV: header, 6 sizes x 7 rows, every algorithm correct" 10 bash -c "
  head -1 '$WORK/bench.csv' | grep -qx 'algorithm,ranks,nodes,bytes,iterations,time_us_min,time_us_avg,time_us_max,algbw_GBps,busbw_GBps,correct' &&
  [ \$(tail -n +2 '$WORK/bench.csv' | wc -l) -eq 42 ] && ! grep -q ',false\$' '$WORK/bench.csv'"
expect_failure "allreduce-bench with an unknown algorithm" "unknown algorithm 'tree'" \
  $MPIRUN -n 2 "$BIN/allreduce-bench" --algorithms ring,tree
expect_failure "allreduce-bench with --min-bytes above --max-bytes" "larger than --max-bytes" \
  $MPIRUN -n 2 "$BIN/allreduce-bench" --min-bytes 1M --max-bytes 4K

run "allreduce-bench --calibrate at 2 ranks writes a decision table" 120 bash -c "$MPIRUN -n 2 $BIN/allreduce-bench \
  --calibrate $WORK/table.csv --min-bytes 1K --max-bytes 64K --step-factor 4 --iterations 4 --rounds 2 >/dev/null \
  && grep -qx 'ranks,nodes,largest_node,max_bytes,algorithm' $WORK/table.csv && grep -q '^2,1,2,65536,' $WORK/table.csv"
run "a calibration at 3 ranks keeps the 2-rank rules" 120 bash -c "$MPIRUN -n 3 $BIN/allreduce-bench \
  --calibrate $WORK/table.csv --min-bytes 1K --max-bytes 4K --step-factor 4 --iterations 4 --rounds 2 >/dev/null \
  && grep -q '^2,1,2,65536,' $WORK/table.csv && grep -q '^3,1,3,4096,' $WORK/table.csv"
printf 'ranks,nodes,largest_node,max_bytes,algorithm\n2,1,2,inf,mpi\n' > "$WORK/table-mpi.csv"
printf 'ranks,nodes,largest_node,max_bytes,algorithm\n2,1,2,inf,ring\n' > "$WORK/table-ring.csv"
run "auto reads the table: every row of auto resolves to mpi" 60 bash -c "$MPIRUN -n 2 $BIN/allreduce-bench --allreduce-table \
  $WORK/table-mpi.csv --algorithms auto --min-bytes 4 --max-bytes 16M --step-factor 64 --iterations 2 --rounds 1 \
  | grep 'auto (' > $WORK/auto-rows.txt && [ \$(grep -c 'auto (mpi)' $WORK/auto-rows.txt) -eq 4 ] \
  && [ \$(wc -l < $WORK/auto-rows.txt) -eq 4 ]"
run "ddp-train with CHORUS_ALLREDUCE_TABLE: the table's algorithm" 120 bash -c "CHORUS_ALLREDUCE_TABLE=$WORK/table-ring.csv \
  $MPIRUN -x CHORUS_ALLREDUCE_TABLE -n 2 $BIN/ddp-train --dataset synthetic --model mlp --hidden 32 --steps 4 --threads 1 \
  --metrics-json $WORK/table-ddp.json >/dev/null && grep -q '\"allreduce_resolved\" : \"ring\"' $WORK/table-ddp.json"
expect_failure "ranks with different decision tables refuse to start" "ranks disagree on --allreduce-table" \
  $MPIRUN -n 1 "$BIN/ddp-train" --dataset synthetic --steps 4 --timeout 20 --allreduce-table "$WORK/table-mpi.csv" \
  : -n 1 "$BIN/ddp-train" --dataset synthetic --steps 4 --timeout 20 --allreduce-table "$WORK/table-ring.csv"
expect_failure "a decision table on one rank only" "rank 1 has none" \
  $MPIRUN -n 1 "$BIN/ddp-train" --dataset synthetic --steps 4 --timeout 20 --allreduce-table "$WORK/table-mpi.csv" \
  : -n 1 "$BIN/ddp-train" --dataset synthetic --steps 4 --timeout 20
expect_failure "a missing decision table" "cannot read $WORK/no-table.csv" \
  $MPIRUN -n 2 "$BIN/ddp-train" --dataset synthetic --steps 4 --allreduce-table "$WORK/no-table.csv"
printf 'ranks,nodes,largest_node,max_bytes,algorithm\n2,1,2,inf,fastest\n' > "$WORK/table-bad.csv"
expect_failure "a decision table with an unknown algorithm" "line 2 .*unknown algorithm 'fastest'" \
  $MPIRUN -n 2 "$BIN/ddp-train" --dataset synthetic --steps 4 --allreduce-table "$WORK/table-bad.csv"

section "layer-bench: one process's step layer by layer, against sgemm and memcpy"
run "layer-bench lenet, 3 steps" 60 bash -c "$BIN/layer-bench --steps 3 --warmup 1 --gemm-size 64 > $WORK/layer-bench.txt \
  && grep -q '^conv2 ' $WORK/layer-bench.txt && grep -q 'MFLOP per sample' $WORK/layer-bench.txt \
  && grep -q 'this core: sgemm 64^3' $WORK/layer-bench.txt"
expect_failure "layer-bench with --batch-size 0" "--batch-size must be at least 1" "$BIN/layer-bench" --batch-size 0
expect_failure "layer-bench with a batch larger than the training set" "larger than the training set" \
  "$BIN/layer-bench" --dataset synthetic --batch-size 100000000

section "data parallel equals single process on the same global batch"
common=(--model lenet --dataset fashion-mnist --steps 20 --lr 0.05 --momentum 0 --seed 7 --log-every 10 --threads 1)
run "ddp-train 1 rank x batch 64" 300 $MPIRUN -n 1 "$BIN/ddp-train" "${common[@]}" --batch-size 64 --save-model "$WORK/one.safetensors"
run "ddp-train 4 ranks x batch 16" 300 $MPIRUN -n 4 "$BIN/ddp-train" "${common[@]}" --batch-size 16 --save-model "$WORK/four.safetensors"
run "4 x 16 ends with the parameters of 1 x 64 (max relative difference 1e-4)" 60 \
  $MPIRUN -n 1 "$BIN/chorus-mpi-tests" compare-models "$WORK/one.safetensors" "$WORK/four.safetensors" 1e-4
run "ddp-train mlp 3 ranks x batch 8, mpi all-reduce" 300 $MPIRUN -n 3 "$BIN/ddp-train" --model mlp --hidden 64,32 \
  --steps 15 --momentum 0 --seed 3 --threads 1 --batch-size 8 --allreduce mpi --save-model "$WORK/mlp3.safetensors"
run "ddp-train mlp 1 rank x batch 24" 300 $MPIRUN -n 1 "$BIN/ddp-train" --model mlp --hidden 64,32 \
  --steps 15 --momentum 0 --seed 3 --threads 1 --batch-size 24 --save-model "$WORK/mlp1.safetensors"
run "mlp 3 x 8 ends with the parameters of 1 x 24" 60 \
  $MPIRUN -n 1 "$BIN/chorus-mpi-tests" compare-models "$WORK/mlp1.safetensors" "$WORK/mlp3.safetensors" 1e-4
run "a different model is detected as different" 60 \
  bash -c "! $MPIRUN -n 1 $BIN/chorus-mpi-tests compare-models $WORK/one.safetensors $WORK/mlp1.safetensors 1e-4"

section "DDP engine: buckets reduced during backward give the same bits as after it"
ddp=(--model mlp --hidden 256,256,128 --dataset synthetic --steps 10 --threads 1 --batch-size 16 --bucket-mb 0.1 --seed 5 --log-every 5)
for p in 2 3; do
  run "ddp-train $p ranks, overlap (adam, 5 buckets)" 300 $MPIRUN -n "$p" "$BIN/ddp-train" "${ddp[@]}" --optimizer adam --lr 0.001 \
    --save-model "$WORK/overlap$p.safetensors" --metrics-json "$WORK/overlap$p.json" --trace "$WORK/trace$p.json"
  run "ddp-train $p ranks, --no-overlap" 300 $MPIRUN -n "$p" "$BIN/ddp-train" "${ddp[@]}" --optimizer adam --lr 0.001 \
    --no-overlap --save-model "$WORK/serial$p.safetensors"
  run "$p ranks: overlap and no-overlap parameters are bitwise identical" 60 \
    $MPIRUN -n 1 "$BIN/chorus-mpi-tests" compare-models "$WORK/overlap$p.safetensors" "$WORK/serial$p.safetensors" 0
  run "$p ranks: metrics report buckets and overlap" 30 $MPIRUN -n 1 "$BIN/chorus-mpi-tests" check-metrics "$WORK/overlap$p.json" \
    'buckets>=3' bucket_bytes comm_seconds exposed_comm_seconds overlap_fraction overlap=1 optimizer=adam
  run "$p ranks: the trace has forward, backward, all-reduce and optimizer spans on every rank" 30 \
    $MPIRUN -n 1 "$BIN/chorus-mpi-tests" check-trace "$WORK/trace$p.json" "$p"
done

section "gradient accumulation: 4 micro-batches of 16 equal one batch of 64"
acc=(--model lenet --dataset fashion-mnist --steps 8 --threads 1 --seed 11 --lr 0.05 --log-every 4)
run "ddp-train 2 ranks, batch 16, --accumulate 4" 300 $MPIRUN -n 2 "$BIN/ddp-train" "${acc[@]}" --batch-size 16 --accumulate 4 \
  --save-model "$WORK/acc4.safetensors"
run "ddp-train 2 ranks, batch 64" 300 $MPIRUN -n 2 "$BIN/ddp-train" "${acc[@]}" --batch-size 64 --save-model "$WORK/acc1.safetensors"
run "accumulated and large-batch parameters agree (max relative difference 1e-5)" 60 \
  $MPIRUN -n 1 "$BIN/chorus-mpi-tests" compare-models "$WORK/acc4.safetensors" "$WORK/acc1.safetensors" 1e-5

section "pipeline: S stages x M micro-batches, GPipe and 1F1B, equal the unsplit model on the same batches"
pipe=(--model mlp --hidden 64,64,32 --dataset synthetic --steps 4 --seed 9 --lr 0.05 --threads 1 --log-every 4)
run "reference: unsplit mlp, 1 process, batch 24" 120 $MPIRUN -n 1 "$BIN/ddp-train" "${pipe[@]}" --batch-size 24 \
  --save-model "$WORK/pipe-ref.safetensors"
for stages in 2 3 4; do
  for schedule in gpipe 1f1b; do
    for m in 1 2 3 4 8; do
      name="pipe-$stages-$schedule-$m"
      if timeout --kill-after=5 120 $MPIRUN -n "$stages" "$BIN/pipe-train" "${pipe[@]}" --stages "$stages" --microbatches "$m" \
           --schedule "$schedule" --batch-size 24 --save-model "$WORK/$name.safetensors" >"$WORK/$name.log" 2>&1 &&
         $MPIRUN -n 1 "$BIN/chorus-mpi-tests" compare-models "$WORK/pipe-ref.safetensors" "$WORK/$name.safetensors" 1e-4 \
           >>"$WORK/$name.log" 2>&1; then
        pass "S=$stages $schedule M=$m equals the unsplit model (1e-4)"
      else
        fail "S=$stages $schedule M=$m equals the unsplit model (1e-4)" "$WORK/$name.log"
      fi
    done
  done
done
run "hybrid: 2 replicas x 3 stages, batch 12 per pipeline" 120 $MPIRUN -n 6 "$BIN/pipe-train" "${pipe[@]}" --stages 3 \
  --microbatches 4 --batch-size 12 --save-model "$WORK/hybrid.safetensors" --metrics-json "$WORK/pipe.json" --trace "$WORK/pipe-trace.json"
run "hybrid 2 x 3 equals the unsplit model on the global batch of 24" 60 \
  $MPIRUN -n 1 "$BIN/chorus-mpi-tests" compare-models "$WORK/pipe-ref.safetensors" "$WORK/hybrid.safetensors" 1e-4
run "pipeline metrics: stages, bubble, stored activations" 30 $MPIRUN -n 1 "$BIN/chorus-mpi-tests" check-metrics "$WORK/pipe.json" \
  stages=3 microbatches=4 schedule=1f1b replicas=2 samples_per_sec test_accuracy bubble_fraction_measured \
  bubble_fraction_theory bubble_fraction_stage_times peak_stored_activations peak_stored_activation_bytes
run "pipeline trace: forward and backward spans on all 6 ranks" 30 \
  $MPIRUN -n 1 "$BIN/chorus-mpi-tests" check-trace "$WORK/pipe-trace.json" 6 pipeline
run "hybrid 2 x 2, uncompressed" 120 $MPIRUN -n 4 "$BIN/pipe-train" "${pipe[@]}" --stages 2 --microbatches 2 \
  --batch-size 12 --save-model "$WORK/hybrid-2x2.safetensors"
run "hybrid 2 x 2 --compress none" 120 $MPIRUN -n 4 "$BIN/pipe-train" "${pipe[@]}" --stages 2 --microbatches 2 \
  --batch-size 12 --compress none --save-model "$WORK/hybrid-none.safetensors"
run "hybrid --compress none is bitwise the uncompressed replica all-reduce" 60 \
  $MPIRUN -n 1 "$BIN/chorus-mpi-tests" compare-models "$WORK/hybrid-2x2.safetensors" "$WORK/hybrid-none.safetensors" 0
run "hybrid 2 x 2 --compress powersgd:2, replicas one node each" 120 $MPIRUN -n 4 "$BIN/pipe-train" "${pipe[@]}" --stages 2 \
  --microbatches 2 --batch-size 12 --compress powersgd:2 --powersgd-start-step 0 --metrics-json "$WORK/hybrid-psgd.json"
run "hybrid --compress powersgd:2: the replica all-reduce is compressed" 30 $MPIRUN -n 1 "$BIN/chorus-mpi-tests" check-metrics \
  "$WORK/hybrid-psgd.json" replicas=2 'compression_ratio>=2' compress_seconds communication_hook
hybrid_psgd=(--model mlp --hidden 64,64,32 --dataset synthetic --steps 12 --seed 9 --lr 0.05 --threads 1 --log-every 4 --stages 2
  --microbatches 2 --batch-size 12 --compress powersgd:2 --powersgd-start-step 2)
run "hybrid 2 x 2 PowerSGD, 12 steps uninterrupted" 120 $MPIRUN -n 4 "$BIN/pipe-train" "${hybrid_psgd[@]}" \
  --save-model "$WORK/hybrid-psgd-full.safetensors"
expect_failure "hybrid PowerSGD: rank 3 dies at step 8 (checkpoints every 5)" "injected fault at step 8" \
  env CHORUS_FAULT=rank=3,step=8,action=exit $MPIRUN -x CHORUS_FAULT -n 4 "$BIN/pipe-train" "${hybrid_psgd[@]}" \
  --checkpoint-dir "$WORK/hybrid-psgd" --checkpoint-every 5
run "hybrid PowerSGD resumes every stage from step 5" 120 $MPIRUN -n 4 "$BIN/pipe-train" "${hybrid_psgd[@]}" \
  --checkpoint-dir "$WORK/hybrid-psgd" --checkpoint-every 5 --resume --save-model "$WORK/hybrid-psgd-resumed.safetensors"
run "hybrid PowerSGD killed-and-resumed is bitwise the uninterrupted run (each stage's replicas' state restored)" 60 \
  $MPIRUN -n 1 "$BIN/chorus-mpi-tests" compare-models "$WORK/hybrid-psgd-full.safetensors" "$WORK/hybrid-psgd-resumed.safetensors" 0
expect_failure "pipe-train --compress with one pipeline: nothing to compress" "nothing to all-reduce" \
  $MPIRUN -n 2 "$BIN/pipe-train" "${pipe[@]}" --stages 2 --compress fp16
for schedule in 1f1b gpipe; do
  run "S=3 M=8 $schedule" 60 $MPIRUN -n 3 "$BIN/pipe-train" "${pipe[@]}" --stages 3 --microbatches 8 --batch-size 24 \
    --schedule "$schedule" --metrics-json "$WORK/peak-$schedule.json"
done
run "1F1B stores at most S - s micro-batches on stage s (3,2,1)" 30 \
  $MPIRUN -n 1 "$BIN/chorus-mpi-tests" check-metrics "$WORK/peak-1f1b.json" 'peak_stored_activations=[3,2,1]'
run "GPipe stores all M = 8 on every stage" 30 \
  $MPIRUN -n 1 "$BIN/chorus-mpi-tests" check-metrics "$WORK/peak-gpipe.json" 'peak_stored_activations=[8,8,8]'
expect_failure "pipe-train: ranks not a multiple of --stages" "multiple of the stages" $MPIRUN -n 4 "$BIN/pipe-train" --stages 3
expect_failure "pipe-train: more stages than layers" "need at least 9 layers" $MPIRUN -n 9 "$BIN/pipe-train" --model mlp --hidden 8 --stages 9 --dataset synthetic
expect_failure "pipe-train: batch not divisible by micro-batches" "not divisible by --microbatches" $MPIRUN -n 2 "$BIN/pipe-train" --batch-size 10 --microbatches 4
expect_failure "pipe-train: --split out of range" "must be increasing layer indices" $MPIRUN -n 3 "$BIN/pipe-train" --stages 3 --split 2,99 --dataset synthetic

section "Examples/: a package using Chorus as a library (its own layer and model, its own loop around the engine)"
example=Examples/.build/release/custom-ddp
run "custom-ddp 1 rank x batch 64" 120 bash -c "$MPIRUN -n 1 $example 120 > $WORK/example1.log"
run "custom-ddp 2 ranks x batch 32" 120 bash -c "$MPIRUN -n 2 $example 120 > $WORK/example2.log"
run "custom-ddp: 2 ranks end with the parameters of 1 (checksum within 1e-5), and it learned (loss below 0.1)" 10 python3 -c "
import re, sys
def read(path):
    text = open(path).read()
    return float(re.search(r'checksum (\\S+)', text).group(1)), float(re.search(r'-> (\\S+),', text).group(1))
(a, loss1), (b, loss2) = read('$WORK/example1.log'), read('$WORK/example2.log')
print(a, b, loss1, loss2)
sys.exit(0 if abs(a - b) <= 1e-5 * abs(a) and loss1 < 0.1 and loss2 < 0.1 else 1)"

section "Fashion-MNIST accuracy: 4 ranks, 2 epochs, default batch and learning rate"
run "ddp-train lenet 4 ranks 2 epochs" 900 $MPIRUN -n 4 "$BIN/ddp-train" --model lenet --epochs 2 --log-every 100 \
  --metrics-json "$WORK/metrics.json"
run "metrics: every field, 936 steps, test accuracy >= 85%" 30 $MPIRUN -n 1 "$BIN/chorus-mpi-tests" check-metrics \
  "$WORK/metrics.json" model=lenet epochs global_batch samples_per_sec final_loss allreduce comm_seconds wall_seconds \
  ranks=4 steps=936 'test_accuracy>=0.85'

section "gradient compression: bitwise where it must be, resumable, as accurate as uncompressed"
run "ddp-train 2 ranks x batch 32" 300 $MPIRUN -n 2 "$BIN/ddp-train" "${common[@]}" --batch-size 32 --save-model "$WORK/two.safetensors"
run "ddp-train --compress none" 300 $MPIRUN -n 2 "$BIN/ddp-train" "${common[@]}" --batch-size 32 --compress none \
  --save-model "$WORK/two-none.safetensors"
run "--compress none is bitwise the uncompressed run" 60 \
  $MPIRUN -n 1 "$BIN/chorus-mpi-tests" compare-models "$WORK/two.safetensors" "$WORK/two-none.safetensors" 0
run "ddp-train --compress powersgd:2 --powersgd-start-step 20 (20 steps)" 300 $MPIRUN -n 2 "$BIN/ddp-train" "${common[@]}" \
  --batch-size 32 --compress powersgd:2 --powersgd-start-step 20 --save-model "$WORK/two-before.safetensors"
run "before its start step PowerSGD is bitwise the uncompressed run" 60 \
  $MPIRUN -n 1 "$BIN/chorus-mpi-tests" compare-models "$WORK/two.safetensors" "$WORK/two-before.safetensors" 0
# A node per rank, so the gradients travel as messages and their bytes are counted;
# each compressor's bytes on the wire against the uncompressed run's (PowerSGD from step 1).
bytes_sent() { grep -o '"bytes_sent_per_step" *: *[0-9.e+]*' "$1" | grep -o '[0-9.e+]*$'; }
for method_and_most in none:1 fp16:0.55 bf16:0.55 powersgd:2:0.2 topk:0.01:0.1; do
  method=${method_and_most%:*} most=${method_and_most##*:}
  run "mlp 3 ranks --compress $method, a node per rank" 300 $MPIRUN -n 3 "$BIN/ddp-train" --model mlp --hidden 256,64 --steps 12 \
    --batch-size 8 --seed 3 --threads 1 --ranks-per-node 1 --compress "$method" $([ "${method%%:*}" = powersgd ] && echo --powersgd-start-step 0) \
    --metrics-json "$WORK/compress-$method.json"
  [ "$method" = none ] && continue
  run "--compress $method sends at most ${most}x the uncompressed run's bytes" 30 bash -c \
    "awk -v c=$(bytes_sent "$WORK/compress-$method.json") -v u=$(bytes_sent "$WORK/compress-none.json") 'BEGIN { exit !(c > 0 && c <= $most * u) }'"
  run "--compress $method: metrics name the compression and its cost" 30 $MPIRUN -n 1 "$BIN/chorus-mpi-tests" \
    check-metrics "$WORK/compress-$method.json" compression_ratio compress_seconds decompress_seconds payload_bytes_per_step
done
run "PowerSGD's trace has compress and decompress slices inside the buckets' all-reduces" 120 bash -c \
  "$MPIRUN -n 2 $BIN/ddp-train --model lenet --dataset synthetic --steps 4 --threads 1 --compress powersgd:2 --powersgd-start-step 0 \
     --trace $WORK/compress-trace.json >/dev/null && grep -q '\"compress bucket 0\"' $WORK/compress-trace.json \
     && grep -q '\"decompress bucket 0\"' $WORK/compress-trace.json"
powersgd_run=(--model lenet --steps 40 --batch-size 16 --threads 1 --log-every 10 --seed 4 --compress powersgd:2 --powersgd-start-step 5)
run "PowerSGD 2 ranks, 40 steps uninterrupted" 120 $MPIRUN -n 2 "$BIN/ddp-train" "${powersgd_run[@]}" --save-model "$WORK/psgd-full.safetensors"
expect_failure "PowerSGD: rank 1 dies at step 25 (checkpoints every 10)" "injected fault at step 25" \
  env CHORUS_FAULT=rank=1,step=25,action=exit $MPIRUN -x CHORUS_FAULT -n 2 "$BIN/ddp-train" "${powersgd_run[@]}" \
  --checkpoint-dir "$WORK/psgd" --checkpoint-every 10
run "PowerSGD resumes from step 20 to 40" 120 $MPIRUN -n 2 "$BIN/ddp-train" "${powersgd_run[@]}" --checkpoint-dir "$WORK/psgd" \
  --checkpoint-every 10 --resume --save-model "$WORK/psgd-resumed.safetensors"
run "PowerSGD killed-and-resumed parameters are bitwise equal to the uninterrupted run (residuals and Q restored)" 60 \
  $MPIRUN -n 1 "$BIN/chorus-mpi-tests" compare-models "$WORK/psgd-full.safetensors" "$WORK/psgd-resumed.safetensors" 0
expect_failure "resuming PowerSGD checkpoints with another compression is refused" "its communication_hook is powersgd" \
  $MPIRUN -n 2 "$BIN/ddp-train" --model lenet --steps 45 --batch-size 16 --seed 4 --compress fp16 --checkpoint-dir "$WORK/psgd" --resume
expect_failure "resuming PowerSGD checkpoints with another bucket layout is refused" "its gradient_buckets is" \
  $MPIRUN -n 2 "$BIN/ddp-train" "${powersgd_run[@]}" --steps 45 --bucket-mb 0.01 --checkpoint-dir "$WORK/psgd" --resume
baseline=$(grep -o '"test_accuracy" *: *[0-9.]*' "$WORK/metrics.json" | grep -o '[0-9.]*$')
floor=$(awk -v a="$baseline" 'BEGIN { printf "%.4f", a - 0.01 }')
for method in powersgd:2 fp16; do
  run "ddp-train lenet 4 ranks 2 epochs --compress $method" 900 $MPIRUN -n 4 "$BIN/ddp-train" --model lenet --epochs 2 \
    --log-every 200 --compress "$method" --metrics-json "$WORK/accuracy-$method.json"
  run "--compress $method: test accuracy within 1 point of uncompressed ($baseline)" 30 $MPIRUN -n 1 "$BIN/chorus-mpi-tests" \
    check-metrics "$WORK/accuracy-$method.json" steps=936 "test_accuracy>=$floor"
done

section "parameter server: BSP equals ddp-train on the workers, SSP's bound holds under a straggler, bad use ends every rank"
psc=(--model lenet --dataset fashion-mnist --steps 24 --lr 0.05 --seed 7 --log-every 12 --threads 1 --batch-size 16)
for w in 2 3; do
  run "ddp-train $w ranks x batch 16 (reference)" 300 $MPIRUN -n "$w" "$BIN/ddp-train" "${psc[@]}" --save-model "$WORK/ps-ddp$w.safetensors"
  for k in 1 2; do
    run "ps-train --mode bsp, $k server(s) + $w workers" 300 $MPIRUN -n $((k + w)) "$BIN/ps-train" "${psc[@]}" --servers "$k" \
      --mode bsp --save-model "$WORK/ps-bsp$k-$w.safetensors" --metrics-json "$WORK/ps-bsp$k-$w.json"
    run "BSP with $k server(s) and $w workers ends with ddp-train's parameters (max relative difference 1e-4)" 60 \
      $MPIRUN -n 1 "$BIN/chorus-mpi-tests" compare-models "$WORK/ps-ddp$w.safetensors" "$WORK/ps-bsp$k-$w.safetensors" 1e-4
  done
done
run "ps-train --mode ssp --staleness 0, 2 servers + 3 workers" 300 $MPIRUN -n 5 "$BIN/ps-train" "${psc[@]}" --servers 2 \
  --mode ssp --staleness 0 --save-model "$WORK/ps-ssp0.safetensors"
run "SSP with staleness 0 ends with BSP's parameters, bit for bit" 60 \
  $MPIRUN -n 1 "$BIN/chorus-mpi-tests" compare-models "$WORK/ps-bsp2-3.safetensors" "$WORK/ps-ssp0.safetensors" 0
run "BSP metrics: the keys ddp-train writes and the parameter server's" 30 $MPIRUN -n 1 "$BIN/chorus-mpi-tests" check-metrics \
  "$WORK/ps-bsp1-2.json" tool=ps-train mode=bsp staleness_bound=0 max_staleness=0 steps=24 servers=1 workers=2 \
  samples_per_sec test_accuracy staleness_histogram worker_iterations blocked_seconds server_busy_fraction bytes_pushed bytes_pulled
run "ps-train --mode ssp --staleness 2 --slow-worker 2:3, 1 server + 3 workers" 300 $MPIRUN -n 4 "$BIN/ps-train" \
  --model lenet --steps 45 --threads 1 --log-every 15 --mode ssp --staleness 2 --slow-worker 2:3 --metrics-json "$WORK/ps-ssp2.json"
run "SSP 2 under a 3x straggler: staleness at most 2, the others ahead of rank 2 by 1 to 2 iterations" 10 python3 -c "
import json, sys
m = json.load(open('$WORK/ps-ssp2.json'))
it = m['worker_iterations']; slow = it[1]; others = it[:1] + it[2:]
print(m['max_staleness'], m['staleness_histogram'], it)
sys.exit(0 if m['max_staleness'] <= 2 and all(slow < i <= slow + 2 for i in others) and sum(m['staleness_histogram']) == sum(it) else 1)"
run "ps-train --mode asp --slow-worker 2:3: the others keep going" 300 $MPIRUN -n 4 "$BIN/ps-train" \
  --model lenet --steps 45 --threads 1 --log-every 15 --mode asp --slow-worker 2:3 --metrics-json "$WORK/ps-asp.json"
# 3x would be the ratio with a core per rank; here the server and the two fast workers
# share 2 cores (the straggler sleeps), so one fast worker can get as little as 1.5x
# (seen in CI: 53, 32 and 52 against 21). Under BSP or SSP 2 the ratio is 1 + 2/21 at most.
run "ASP under a 3x straggler: the fast workers do at least 1.4 times its iterations" 10 python3 -c "
import json, sys
m = json.load(open('$WORK/ps-asp.json')); it = m['worker_iterations']; print(m['max_staleness'], it)
sys.exit(0 if all(i >= 1.4 * it[1] for i in it[:1] + it[2:]) and m['max_staleness'] > 2 else 1)"
mkdir -p "$WORK/ps-ck"
run "ps-train BSP, 2 servers + 2 workers, 30 steps uninterrupted" 300 $MPIRUN -n 4 "$BIN/ps-train" "${psc[@]}" --steps 30 --servers 2 \
  --save-model "$WORK/ps-full.safetensors"
expect_failure "ps-train: worker rank 3 dies at step 17 (checkpoints every 8): the job ends, naming it" "injected fault at step 17" \
  env CHORUS_FAULT=rank=3,step=17,action=exit $MPIRUN -x CHORUS_FAULT -n 4 "$BIN/ps-train" "${psc[@]}" --steps 30 --servers 2 \
  --checkpoint-dir "$WORK/ps-ck" --checkpoint-every 8
run "... leaving each server's whole checkpoints of steps 8 and 16" 10 bash -c \
  "ls '$WORK/ps-ck/server-0' '$WORK/ps-ck/server-1' | grep -c 'step-0000001[6]\|step-0000000[8]' | grep -qx 4"
run "ps-train resumes from step 16 to 30" 300 $MPIRUN -n 4 "$BIN/ps-train" "${psc[@]}" --steps 30 --servers 2 \
  --checkpoint-dir "$WORK/ps-ck" --checkpoint-every 8 --resume --save-model "$WORK/ps-resumed.safetensors"
run "the killed-and-resumed BSP run ends bitwise where the uninterrupted one does" 60 \
  $MPIRUN -n 1 "$BIN/chorus-mpi-tests" compare-models "$WORK/ps-full.safetensors" "$WORK/ps-resumed.safetensors" 0
expect_failure "ps-train: a server rank stalls, --timeout 5: the workers end the job naming the wait" "no progress for [0-9]+ s \(--timeout 5\)" \
  env CHORUS_FAULT=rank=0,step=3,action=stall $MPIRUN -x CHORUS_FAULT -n 3 "$BIN/ps-train" --dataset synthetic --model mlp \
  --hidden 16 --steps 10 --threads 1 --timeout 5
expect_failure "ps-train: a diverging worker ends the job naming the tensor" "step [0-9]+: the gradient of [a-z0-9.]+ \(layer" \
  $MPIRUN -n 3 "$BIN/ps-train" --model mlp --hidden 32 --dataset synthetic --steps 30 --lr 1e30 --optimizer sgd --mode asp
run "ps-train --skip-nonfinite leaves such pushes out and finishes" 120 bash -c "$MPIRUN -n 3 $BIN/ps-train --model mlp --hidden 32 \
  --dataset synthetic --steps 30 --lr 1e30 --optimizer sgd --mode asp --skip-nonfinite --metrics-json $WORK/ps-skip.json >/dev/null 2>&1 \
  && grep -q '\"skipped_pushes\" : [1-9]' $WORK/ps-skip.json"
expect_failure "ps-train with no worker" "--servers 2 on 2 ranks leaves no worker" $MPIRUN -n 2 "$BIN/ps-train" --servers 2
expect_failure "ps-train with no server" "--servers must be at least 1" $MPIRUN -n 2 "$BIN/ps-train" --servers 0
expect_failure "ps-train --staleness without --mode ssp" "--staleness applies to --mode ssp only" $MPIRUN -n 3 "$BIN/ps-train" --staleness 2
expect_failure "ps-train --slow-worker naming a server" "names rank 0, which is not a worker" $MPIRUN -n 3 "$BIN/ps-train" --slow-worker 0:3
expect_failure "ps-train --straggle with a probability above 1" "probability must be between 0 and 1" $MPIRUN -n 3 "$BIN/ps-train" --straggle 2:3
expect_failure "ps-train --mode ssp --staleness -1" "staleness must be at least 0" $MPIRUN -n 3 "$BIN/ps-train" --mode ssp --staleness -1

section "tune: a trial is ddp-train, results independent of the group count, kill and resume, ASHA stops trials, bad use"
tb=(--model mlp --hidden 64 --steps 12 --batch-size 16 --threads 1 --log-every 6 --seed 5)
tg=(--grid lr=0.02,0.05 --grid momentum=0,0.9 --cv 2)
run "tune 4 ranks, 2 per trial: 4 trials x 2 folds, refit saved" 300 $MPIRUN -n 4 "$BIN/tune" "${tg[@]}" --ranks-per-trial 2 \
  --results "$WORK/tune4.csv" --metrics-json "$WORK/tune4.json" --save-model "$WORK/tune-refit.safetensors" "${tb[@]}"
best=$(python3 -c "import json; p = json.load(open('$WORK/tune4.json'))['best_parameters']; print(' '.join('--%s %s' % kv for kv in sorted(p.items())))" 2>/dev/null)
run "mpirun -n 2 ddp-train with the best parameters ($best)" 120 $MPIRUN -n 2 "$BIN/ddp-train" "${tb[@]}" $best \
  --save-model "$WORK/tune-ddp.safetensors"
run "the refit model is bitwise ddp-train's" 60 $MPIRUN -n 1 "$BIN/chorus-mpi-tests" compare-models \
  "$WORK/tune-ddp.safetensors" "$WORK/tune-refit.safetensors" 0
cat > "$WORK/placeless.py" <<'PY'
import csv, sys
for row in csv.DictReader(open(sys.argv[1])):
    print({k: v for k, v in row.items() if k not in ("train_seconds", "group")})
PY
for p in 1 3; do
  run "tune $p rank(s), 1 per trial" 300 $MPIRUN -n "$p" "$BIN/tune" "${tg[@]}" --no-refit --results "$WORK/tune-g$p.csv" "${tb[@]}"
done
same_results() { [ "$(python3 "$WORK/placeless.py" "$1")" = "$(python3 "$WORK/placeless.py" "$2")" ]; }
run "the results file is the same with 1 and 3 groups (times and groups apart), every trial once" 30 bash -c \
  "$(declare -f same_results); WORK=$WORK; same_results $WORK/tune-g1.csv $WORK/tune-g3.csv \
   && [ \$(tail -n +2 $WORK/tune-g1.csv | cut -d, -f1 | sort -u | wc -l) -eq 4 ]"
run "tune killed after two trials (SIGKILL to mpirun)" 300 bash -c "
  $MPIRUN -n 2 $BIN/tune ${tg[*]} --no-refit --results $WORK/tune-kill.csv ${tb[*]} >/dev/null 2>&1 &
  job=\$!
  while [ \$(cat $WORK/tune-kill.csv 2>/dev/null | wc -l) -lt 3 ]; do sleep 0.05; kill -0 \$job 2>/dev/null || exit 1; done
  kill -9 \$job; pkill -9 -x tune; wait \$job; [ \$(wc -l < $WORK/tune-kill.csv) -lt 5 ]"
run "tune --resume runs only the missing trials and ends with the uninterrupted results" 300 bash -c "
  $MPIRUN -n 2 $BIN/tune ${tg[*]} --no-refit --results $WORK/tune-kill.csv --resume ${tb[*]} > $WORK/tune-resume.log 2>&1 \
  && grep -qE '4 trials \([0-2] to run\)' $WORK/tune-resume.log \
  && { $(declare -f same_results); WORK=$WORK; same_results $WORK/tune-kill.csv $WORK/tune-g1.csv; }"
run "tune --scheduler asha: some trials stop at the first rung, the best reaches the last" 300 bash -c "
  $MPIRUN -n 2 $BIN/tune --grid lr=0.01,0.02,0.05,0.1 --scheduler asha --max-epochs 3 --grace-epochs 1 \
    --reduction-factor 3 --model mlp --hidden 32 --batch-size 512 --threads 1 --results $WORK/asha.csv \
    --metrics-json $WORK/asha.json > $WORK/asha.log 2>&1 \
  && grep -q ',stopped,' $WORK/asha.csv && grep -q ',ok,' $WORK/asha.csv \
  && grep -q '\"trials_stopped\" : [1-9]' $WORK/asha.json && grep -q 'refit_test_accuracy' $WORK/asha.json \
  && [ ! -d $WORK/asha.csv.trials ]"
expect_failure "tune: 2 ranks per trial on 3 ranks" "do not divide the 3 ranks" $MPIRUN -n 3 "$BIN/tune" --grid lr=0.1 --ranks-per-trial 2
expect_failure "tune: an unknown parameter" "'foo' is not a setting tune can search" $MPIRUN -n 2 "$BIN/tune" --grid foo=1,2
expect_failure "tune: an empty search space" "the search space is empty" $MPIRUN -n 2 "$BIN/tune" --epochs 1
expect_failure "tune: an empty grid value" "lr has an empty value" $MPIRUN -n 2 "$BIN/tune" --grid lr=
expect_failure "tune --cv 1" "--cv must be at least 2" $MPIRUN -n 2 "$BIN/tune" --grid lr=0.1 --cv 1
expect_failure "tune: a bad value is an error before training" "trial 2 \(lr=-1.0\): --lr must be a positive number" \
  $MPIRUN -n 2 "$BIN/tune" --grid lr=0.1,-1
expect_failure "tune: two outputs naming one file" "--results and --metrics-json name the same file" \
  $MPIRUN -n 2 "$BIN/tune" --grid lr=0.1 --results "$WORK/tune-same" --metrics-json "$WORK/tune-same"
expect_failure "tune: a bad base flag" "the base configuration .*--batch-size must be at least 1" $MPIRUN -n 2 "$BIN/tune" --grid lr=0.1 --batch-size 0

section "fed-train: FedSGD is full-batch gradient descent, the same model at 1-3 ranks, secure = plain, kill and resume, bad use"
mkdir -p "$WORK/fed-data"
python3 - "$WORK/fed-data" <<'PY'
import random, struct, sys
def idx(path, code, dims, data):
    with open(path, 'wb') as f:
        f.write(struct.pack('>BBBB', 0, 0, code, len(dims)) + b''.join(struct.pack('>I', d) for d in dims) + bytes(data))
random.seed(3)
for name, n in (('train', 240), ('t10k', 60)):
    labels = [i % 10 for i in range(n)]
    pixels = [min(255, max(0, int(random.gauss(40 + 20 * l, 60)))) for l in labels for _ in range(784)]
    idx(f'{sys.argv[1]}/{name}-images-idx3-ubyte', 8, [n, 28, 28], pixels)
    idx(f'{sys.argv[1]}/{name}-labels-idx1-ubyte', 8, [n], labels)
PY
fd=(--data-dir "$WORK/fed-data" --model mlp --hidden 32 --optimizer sgd --momentum 0 --lr 0.1 --threads 1 --seed 4 --log-every 5)
run "oracle: ddp-train, 1 process, 5 full-batch steps on the 240 samples" 120 $MPIRUN -n 1 "$BIN/ddp-train" "${fd[@]}" \
  --batch-size 240 --epochs 5 --save-model "$WORK/fed-oracle.safetensors"
for r in 1 2 3; do
  run "fed-train FedSGD, 4 equal clients, all asked, $r rank(s)" 120 $MPIRUN -n $r "$BIN/fed-train" "${fd[@]}" --algorithm fedsgd \
    --clients 4 --fraction 1 --rounds 5 --save-model "$WORK/fed-sgd-$r.safetensors"
  run "FedSGD at $r rank(s) equals full-batch gradient descent (1e-4)" 60 $MPIRUN -n 1 "$BIN/chorus-mpi-tests" compare-models \
    "$WORK/fed-oracle.safetensors" "$WORK/fed-sgd-$r.safetensors" 1e-4
done
fa=("${fd[@]}" --clients 12 --fraction 0.5 --rounds 6 --partition shards:2 --local-epochs 2 --local-batch 5 --client-dropout 0.3
  --server-momentum 0.5 --target-accuracy 0.05)
for r in 1 2 3; do
  run "fed-train FedAvg shards:2 with dropout, $r rank(s)" 120 $MPIRUN -n $r "$BIN/fed-train" "${fa[@]}" \
    --save-model "$WORK/fed-avg-$r.safetensors" --rounds-csv "$WORK/fed-rounds-$r.csv" --metrics-json "$WORK/fed-avg-$r.json"
done
for r in 2 3; do
  run "FedAvg at $r ranks is bitwise the 1-rank model" 60 $MPIRUN -n 1 "$BIN/chorus-mpi-tests" compare-models \
    "$WORK/fed-avg-1.safetensors" "$WORK/fed-avg-$r.safetensors" 0
done
run "fed-train metrics count the dropped clients" 30 $MPIRUN -n 1 "$BIN/chorus-mpi-tests" check-metrics "$WORK/fed-avg-2.json" \
  'dropped_clients>=1' clients_reported bytes_up bytes_down 'rounds_to_target>=1'
run "the rounds file has a row per round" 10 bash -c "[ \$(wc -l < $WORK/fed-rounds-2.csv) -eq 7 ] && head -1 $WORK/fed-rounds-2.csv | grep -q '^round,asked,reported,dropped'"
run "fed-train --secure-aggregation, 2 ranks" 120 $MPIRUN -n 2 "$BIN/fed-train" "${fa[@]}" --secure-aggregation \
  --save-model "$WORK/fed-secure.safetensors"
run "secure aggregation equals plain aggregation (1e-4)" 60 $MPIRUN -n 1 "$BIN/chorus-mpi-tests" compare-models \
  "$WORK/fed-avg-1.safetensors" "$WORK/fed-secure.safetensors" 1e-4
for r in 1 3; do
  run "fed-train FedProx, half the clients 4x slower, deadline 3, $r rank(s)" 120 $MPIRUN -n $r "$BIN/fed-train" "${fa[@]}" \
    --algorithm fedprox --slow-clients 0.5:4 --round-deadline 3 --save-model "$WORK/fed-slow-$r.safetensors" --metrics-json "$WORK/fed-slow-$r.json"
done
run "FedProx keeps the slow clients' partial work" 30 $MPIRUN -n 1 "$BIN/chorus-mpi-tests" check-metrics "$WORK/fed-slow-3.json" \
  'partial_clients>=1' 'slow_clients>=6' simulated_time
run "FedProx with stragglers at 3 ranks is bitwise the 1-rank model" 60 $MPIRUN -n 1 "$BIN/chorus-mpi-tests" compare-models \
  "$WORK/fed-slow-1.safetensors" "$WORK/fed-slow-3.safetensors" 0
run "fed-train FedAvg with the same stragglers, 2 ranks" 120 $MPIRUN -n 2 "$BIN/fed-train" "${fa[@]}" \
  --slow-clients 0.5:4 --round-deadline 3 --metrics-json "$WORK/fed-late.json"
run "FedAvg drops the late clients" 30 $MPIRUN -n 1 "$BIN/chorus-mpi-tests" check-metrics "$WORK/fed-late.json" 'late_clients>=1'
expect_failure "fed-train: rank 1 dies in round 5 (checkpoints every 2)" "injected fault at step 4" \
  env CHORUS_FAULT=rank=1,step=4,action=exit $MPIRUN -x CHORUS_FAULT -n 2 "$BIN/fed-train" "${fa[@]}" \
  --checkpoint-dir "$WORK/fed-ckpt" --checkpoint-every 2 --rounds-csv "$WORK/fed-resumed.csv"
run "fed-train resumes from round 4 on 3 ranks" 120 $MPIRUN -n 3 "$BIN/fed-train" "${fa[@]}" --checkpoint-dir "$WORK/fed-ckpt" \
  --checkpoint-every 2 --resume --save-model "$WORK/fed-resumed.safetensors" --rounds-csv "$WORK/fed-resumed.csv"
run "the resumed model is bitwise the uninterrupted one" 60 $MPIRUN -n 1 "$BIN/chorus-mpi-tests" compare-models \
  "$WORK/fed-avg-1.safetensors" "$WORK/fed-resumed.safetensors" 0
run "the resumed rounds file is the uninterrupted one (but the seconds)" 10 bash -c \
  "diff <(cut -d, -f1-9,11- $WORK/fed-rounds-1.csv) <(cut -d, -f1-9,11- $WORK/fed-resumed.csv)"
run "fed-train --describe-partition prints each client's labels" 60 bash -c "$MPIRUN -n 2 $BIN/fed-train ${fd[*]} --clients 6 \
  --partition labels:2 --describe-partition > $WORK/fed-describe.txt && grep -q '^# labels:2: 6 clients' $WORK/fed-describe.txt \
  && [ \$(grep -c '^[0-9]*,[0-9]*,2,' $WORK/fed-describe.txt) -eq 6 ]"
expect_failure "fed-train --fraction 0" "--fraction must be in \(0, 1\] \(got 0.0\)" $MPIRUN -n 2 "$BIN/fed-train" "${fd[@]}" --fraction 0
expect_failure "fed-train --fraction 1.5" "--fraction must be in \(0, 1\]" $MPIRUN -n 2 "$BIN/fed-train" "${fd[@]}" --fraction 1.5
expect_failure "fed-train: more clients than samples" "241 clients need at least 241 training samples" \
  $MPIRUN -n 2 "$BIN/fed-train" "${fd[@]}" --clients 241
expect_failure "fed-train: an unknown partition" "--partition must be iid, shards:S, dirichlet:ALPHA or labels:L" \
  $MPIRUN -n 2 "$BIN/fed-train" "${fd[@]}" --partition zipf:2
expect_failure "fed-train --slow-clients 0.5" "--slow-clients must be F:X" $MPIRUN -n 2 "$BIN/fed-train" "${fd[@]}" --slow-clients 0.5
expect_failure "fed-train --round-deadline -1" "--round-deadline must be a positive number" $MPIRUN -n 2 "$BIN/fed-train" "${fd[@]}" \
  --round-deadline -1
expect_failure "fed-train --mu without fedprox" "--mu needs --algorithm fedprox" $MPIRUN -n 2 "$BIN/fed-train" "${fd[@]}" --mu 0.1
expect_failure "fed-train --rounds-csv and --metrics-json on one file" "--metrics-json and --rounds-csv name the same file" \
  $MPIRUN -n 2 "$BIN/fed-train" "${fd[@]}" --rounds-csv "$WORK/same.json" --metrics-json "$WORK/same.json"

section "reliability: kill and resume, agreement, faults, checkpoints, non-finite gradients"
ck=(--model lenet --steps 40 --batch-size 16 --threads 1 --log-every 10 --seed 4)
run "ddp-train 2 ranks, 40 steps uninterrupted" 120 $MPIRUN -n 2 "$BIN/ddp-train" "${ck[@]}" --save-model "$WORK/ck-full.safetensors"
expect_failure "rank 1 dies at step 25 (checkpoints every 10): the job ends, naming it" "injected fault at step 25" \
  env CHORUS_FAULT=rank=1,step=25,action=exit $MPIRUN -x CHORUS_FAULT -n 2 "$BIN/ddp-train" "${ck[@]}" \
  --checkpoint-dir "$WORK/ck" --checkpoint-every 10
run "the crash left whole checkpoints only (steps 10 and 20)" 10 bash -c "ls '$WORK/ck' | tr '\n' ' ' | grep -qx 'step-00000010.ckpt.safetensors step-00000020.ckpt.safetensors '"
mkdir -p "$WORK/ck-bad" && cp "$WORK"/ck/*.safetensors "$WORK/ck-bad/"
newest=$(ls "$WORK/ck-bad" | sort | tail -1)
head -c 5000 "$WORK/ck-bad/$newest" > "$WORK/ck-bad/tmp" && mv "$WORK/ck-bad/tmp" "$WORK/ck-bad/$newest"
run "resume from step 20 to 40" 120 $MPIRUN -n 2 "$BIN/ddp-train" "${ck[@]}" --checkpoint-dir "$WORK/ck" --checkpoint-every 10 \
  --resume --save-model "$WORK/ck-resumed.safetensors"
run "killed-and-resumed parameters are bitwise equal to the uninterrupted run" 60 \
  $MPIRUN -n 1 "$BIN/chorus-mpi-tests" compare-models "$WORK/ck-full.safetensors" "$WORK/ck-resumed.safetensors" 0
expect_failure "resuming with another model is refused" "written by another run: its model is lenet" \
  $MPIRUN -n 2 "$BIN/ddp-train" --model mlp --steps 45 --batch-size 16 --seed 4 --checkpoint-dir "$WORK/ck" --resume
expect_failure "resuming with another rank count is refused" "its ranks is 2, this run's is 4" \
  $MPIRUN -n 4 "$BIN/ddp-train" --model lenet --steps 45 --batch-size 8 --seed 4 --checkpoint-dir "$WORK/ck" --resume
# The output goes to a file, not into `grep -q`: grep leaving at the first match
# would close the pipe under a rank that still prints (it hung CI once).
run "a truncated newest checkpoint is skipped for the previous one" 120 bash -c \
  "$MPIRUN -n 2 $BIN/ddp-train ${ck[*]} --checkpoint-dir $WORK/ck-bad --resume >$WORK/ck-bad.log 2>&1 && grep -q 'resumed from .*step-00000010' $WORK/ck-bad.log"
for f in "$WORK"/ck-bad/*; do printf 'garbage' > "$f"; done
expect_failure "only corrupted checkpoints: an error, not a silent fresh start" "no usable checkpoint" \
  $MPIRUN -n 2 "$BIN/ddp-train" "${ck[@]}" --checkpoint-dir "$WORK/ck-bad" --resume
expect_failure "unwritable checkpoint directory" "cannot create /proc/chorus" \
  $MPIRUN -n 2 "$BIN/ddp-train" --steps 5 --checkpoint-dir /proc/chorus/ck --checkpoint-every 2
expect_failure "--checkpoint-every without --checkpoint-dir" "need --checkpoint-dir" $MPIRUN -n 2 "$BIN/ddp-train" --checkpoint-every 5
expect_failure "a bad flag on one rank only (MPMD): every rank ends, that rank names the flag" "batch-size must be at least 1" \
  $MPIRUN -n 1 "$BIN/ddp-train" --dataset synthetic --steps 5 --timeout 5 : -n 1 "$BIN/ddp-train" --dataset synthetic --steps 5 --timeout 5 --batch-size 0
expect_failure "pipe-train --microbatches 0 on one rank only" "microbatches must be at least 1" \
  $MPIRUN -n 1 "$BIN/pipe-train" --dataset synthetic --steps 5 : -n 1 "$BIN/pipe-train" --dataset synthetic --steps 5 --microbatches 0
expect_failure "ranks started with different --log-every stop before training" "ranks disagree on --log-every" \
  $MPIRUN -n 1 "$BIN/ddp-train" --dataset synthetic --steps 5 --log-every 2 : -n 1 "$BIN/ddp-train" --dataset synthetic --steps 5 --log-every 3
expect_failure "ranks started with different --hidden" "ranks disagree on the model: rank 0 has mlp" \
  $MPIRUN -n 1 "$BIN/ddp-train" --model mlp --hidden 64 --dataset synthetic : -n 1 "$BIN/ddp-train" --model mlp --hidden 32 --dataset synthetic
expect_failure "rank 2 of 4 dies at step 5: the job ends promptly" "injected fault at step 5" \
  env CHORUS_FAULT=rank=2,step=5,action=exit $MPIRUN -x CHORUS_FAULT -n 4 "$BIN/ddp-train" --dataset synthetic --steps 50
expect_failure "rank 1 of 3 stalls in a collective, --timeout 5: the others end the job, naming the wait" \
  "no progress for [0-9]+ s \(--timeout 5\): waiting for the (gradient all-reduces|all-reduce of gradient bucket)" \
  env CHORUS_FAULT=rank=1,step=3,action=stall $MPIRUN -x CHORUS_FAULT -n 3 "$BIN/ddp-train" --dataset synthetic --steps 20 --timeout 5
expect_failure "--timeout -1" "timeout must be a non-negative number" $MPIRUN -n 2 "$BIN/ddp-train" --timeout -1
pk=(--model mlp --hidden 64,64,32 --steps 40 --batch-size 24 --microbatches 4 --stages 3 --threads 1 --log-every 10 --seed 4 --optimizer adam --lr 0.001)
run "pipe-train 3 stages, 40 steps uninterrupted" 120 $MPIRUN -n 3 "$BIN/pipe-train" "${pk[@]}" --save-model "$WORK/pk-full.safetensors"
expect_failure "pipe-train: rank 1 (stage 1) dies at step 25" "injected fault at step 25" \
  env CHORUS_FAULT=rank=1,step=25,action=exit $MPIRUN -x CHORUS_FAULT -n 3 "$BIN/pipe-train" "${pk[@]}" \
  --checkpoint-dir "$WORK/pk" --checkpoint-every 10
run "pipe-train resumes every stage from step 20" 120 bash -c "$MPIRUN -n 3 $BIN/pipe-train ${pk[*]} --checkpoint-dir $WORK/pk \
  --checkpoint-every 10 --resume --save-model $WORK/pk-resumed.safetensors 2>&1 | grep -q 'resumed every stage from step 20'"
run "pipeline: killed-and-resumed parameters are bitwise equal to the uninterrupted run" 60 \
  $MPIRUN -n 1 "$BIN/chorus-mpi-tests" compare-models "$WORK/pk-full.safetensors" "$WORK/pk-resumed.safetensors" 0
expect_failure "pipe-train: stage 1 stalls, --timeout 5: the others end the job naming the wait" "no progress for [0-9]+ s \(--timeout 5\)" \
  env CHORUS_FAULT=rank=1,step=3,action=stall $MPIRUN -x CHORUS_FAULT -n 3 "$BIN/pipe-train" --model mlp --hidden 64,64 \
  --stages 3 --dataset synthetic --steps 20 --timeout 5
expect_failure "pipe-train: ranks started with different --microbatches" "ranks disagree on --microbatches: rank 0 has 4, rank 1 has 2" \
  $MPIRUN -n 1 "$BIN/pipe-train" --stages 2 --dataset synthetic --microbatches 4 : -n 1 "$BIN/pipe-train" --stages 2 --dataset synthetic --microbatches 2
expect_failure "pipe-train: a diverging run stops on every rank, naming the tensor and stage" "the gradient of [a-z0-9.]+ \(layer [a-z0-9]+, stage [0-9]\) is not finite" \
  $MPIRUN -n 2 "$BIN/pipe-train" --model mlp --hidden 32 --stages 2 --dataset synthetic --steps 30 --lr 1e30 --optimizer sgd
expect_failure "a diverging run stops at a non-finite gradient, naming step and layer" "step [0-9]+: the gradient of [a-z0-9.]+ \(layer" \
  $MPIRUN -n 2 "$BIN/ddp-train" --model mlp --hidden 32 --dataset synthetic --steps 30 --lr 1e30 --optimizer sgd
run "--skip-nonfinite skips such updates and finishes" 120 $MPIRUN -n 2 "$BIN/ddp-train" --model mlp --hidden 32 --dataset synthetic \
  --steps 30 --lr 1e30 --optimizer sgd --skip-nonfinite --metrics-json "$WORK/skip.json"
run "metrics count the skipped steps" 30 $MPIRUN -n 1 "$BIN/chorus-mpi-tests" check-metrics "$WORK/skip.json" 'skipped_nonfinite_steps>=1'

section "help"
run "ddp-train --help lists the DDP flags" 30 bash -c "$MPIRUN -n 2 $BIN/ddp-train --help | grep -q -- '--bucket-mb'"
run "allreduce-bench --help lists its flags" 30 bash -c "$MPIRUN -n 1 $BIN/allreduce-bench --help | grep -q -- '--algorithms'"

section "bad input: a clear message and a non-zero exit from every rank, no hang"
mkdir -p "$WORK/empty" "$WORK/truncated" "$WORK/badmagic"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  cp /usr/share/datasets/fashion-mnist/$f.gz "$WORK/truncated/"
  cp /usr/share/datasets/fashion-mnist/$f.gz "$WORK/badmagic/"
done
gzip -dc /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz | head -c 1000000 > "$WORK/truncated/train-images-idx3-ubyte"
rm "$WORK/truncated/train-images-idx3-ubyte.gz"
gzip -dc /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz > "$WORK/badmagic/t10k-labels-idx1-ubyte"
printf '\x0d' | dd of="$WORK/badmagic/t10k-labels-idx1-ubyte" bs=1 seek=2 conv=notrunc status=none
rm "$WORK/badmagic/t10k-labels-idx1-ubyte.gz"
expect_failure "missing dataset names the file and the package" "missing Fashion-MNIST file .*train-images.*dataset-fashion-mnist|check --data-dir" \
  $MPIRUN -n 3 "$BIN/ddp-train" --data-dir "$WORK/empty"
expect_failure "truncated IDX file" "truncated" $MPIRUN -n 2 "$BIN/ddp-train" --data-dir "$WORK/truncated"
expect_failure "IDX file with a wrong type byte" "unsupported IDX element type|magic" $MPIRUN -n 2 "$BIN/ddp-train" --data-dir "$WORK/badmagic"
expect_failure "--batch-size 0" "batch-size must be at least 1" $MPIRUN -n 4 "$BIN/ddp-train" --batch-size 0
expect_failure "unknown model" "model" $MPIRUN -n 4 "$BIN/ddp-train" --model resnet
expect_failure "--lr -1" "lr must be a positive" $MPIRUN -n 2 "$BIN/ddp-train" --lr -1
expect_failure "--compress zip" "compress must be none, fp16, bf16, powersgd:R or topk:F" $MPIRUN -n 2 "$BIN/ddp-train" --compress zip
expect_failure "--compress powersgd:0" "powersgd needs a rank from 1 to 64" $MPIRUN -n 2 "$BIN/ddp-train" --compress powersgd:0
expect_failure "--compress topk:1.5" "topk needs a fraction in" $MPIRUN -n 2 "$BIN/ddp-train" --compress topk:1.5
expect_failure "--compress fp16 --allreduce mpi" "MPI_Allreduce cannot add 16-bit floats" $MPIRUN -n 2 "$BIN/ddp-train" --compress fp16 --allreduce mpi
expect_failure "--compress fp16:2" "fp16 takes no argument" $MPIRUN -n 2 "$BIN/ddp-train" --compress fp16:2
expect_failure "malformed --hidden" "hidden must be positive integers" $MPIRUN -n 2 "$BIN/ddp-train" --model mlp --hidden 512,x
expect_failure "--accumulate 0" "accumulate must be at least 1" $MPIRUN -n 2 "$BIN/ddp-train" --accumulate 0
expect_failure "--bucket-mb 0" "bucket-mb must be a positive number" $MPIRUN -n 2 "$BIN/ddp-train" --bucket-mb 0
expect_failure "unknown optimizer" "optimizer" $MPIRUN -n 2 "$BIN/ddp-train" --optimizer lion
expect_failure "nesterov without momentum" "nesterov needs --momentum above 0" $MPIRUN -n 2 "$BIN/ddp-train" --optimizer nesterov --momentum 0
expect_failure "a momentum for plain sgd (not silently unused)" "--momentum 0.9 needs --optimizer momentum or nesterov" \
  $MPIRUN -n 2 "$BIN/fed-train" --optimizer sgd --momentum 0.9
expect_failure "global batch larger than the dataset" "fewer than one global batch" \
  $MPIRUN -n 2 "$BIN/ddp-train" --batch-size 40000 --dataset synthetic
expect_failure "unwritable model path" "cannot write" $MPIRUN -n 2 "$BIN/ddp-train" --dataset synthetic --steps 1 \
  --save-model /proc/chorus/model.safetensors

section "hardening: no input, flag combination or signal hangs a job, clobbers a file or crashes with a backtrace"
# in_fresh_dir NAME PATTERN EXPECT ALLOWED -- CMD...: runs CMD (timeout 60 s, so every rank
# has exited within it) in a new directory prepared by the caller's setup_dir, then checks
# the exit (EXPECT: fail or ok), the message (PATTERN, or - for none), that no rank printed
# a backtrace, and that the directory holds exactly what it held before plus ALLOWED
# (a space-separated list of names the command may create, or -).
snapshot() { (cd "$1" && find . -mindepth 1 -printf '%p %y %s %T@\n' | sort); }
in_fresh_dir() {
  local name=$1 pattern=$2 expect=$3 allowed=$4; shift 5
  local dir="$WORK/fresh/$(echo "$name" | tr -c 'a-zA-Z0-9' _)" log
  log="$dir.log"
  mkdir -p "$dir"
  setup_dir "$dir"
  local before; before=$(snapshot "$dir")
  (cd "$dir" && timeout --kill-after=5 60 "$@") >"$log" 2>&1
  local code=$?
  local after; after=$(snapshot "$dir")
  local created; created=$(comm -13 <(echo "$before" | sed '/^$/d' | cut -d' ' -f1 | sort) <(echo "$after" | sed '/^$/d' | cut -d' ' -f1 | sort) | sed 's|^\./||' | tr '\n' ' ')
  # Entries of before that are not in after, to the byte count and time: changed or gone.
  local kept; kept=$(comm -23 <(echo "$before" | sed '/^$/d') <(echo "$after" | sed '/^$/d') | cut -d' ' -f1 | sed 's|^\./||' | tr '\n' ' ')
  local unexpected=""
  for f in $created; do [[ " $allowed " == *" $f "* ]] || unexpected="$unexpected $f"; done
  if [ "$code" -eq 124 ] || [ "$code" -eq 137 ]; then fail "$name: hung (killed after 60 s)" "$log"
  elif [ "$expect" = fail ] && [ "$code" -eq 0 ]; then fail "$name: exited 0, expected an error" "$log"
  elif [ "$expect" = ok ] && [ "$code" -ne 0 ]; then fail "$name: exit $code, expected success" "$log"
  elif [ "$pattern" != - ] && ! grep -qE -- "$pattern" "$log"; then fail "$name: exit $code but no message matching '$pattern'" "$log"
  elif grep -qE "Fatal error|Backtrac|Crash|Program crashed" "$log"; then fail "$name: a backtrace" "$log"
  elif [ -n "$unexpected" ]; then fail "$name: created$unexpected" "$log"
  elif [ -n "$kept" ] && [ "$expect" = fail ]; then fail "$name: changed $kept" "$log"
  else pass "$name (exit $code)"; fi
}
setup_dir() { :; }
BIN=$(cd "$BIN" && pwd)  # the commands below run in their own directories
ddp=("$BIN/ddp-train" --dataset synthetic --model mlp --hidden 16 --steps 5 --timeout 10 --threads 1)
pipe=("$BIN/pipe-train" --dataset synthetic --model mlp --hidden 16,16 --stages 2 --steps 5 --timeout 10 --threads 1)

# 1. Outputs that are not regular files are refused at start and left as they were;
#    a symbolic link writes its target.
setup_dir() { mknod "$1/fullnode" c 1 7 && mkfifo "$1/fifo" && mkdir "$1/folder"; }
in_fresh_dir "--metrics-json on a device node is refused, the node untouched" "refusing to write fullnode: it is a device" fail - -- \
  $MPIRUN -n 2 "${ddp[@]}" --metrics-json fullnode
in_fresh_dir "--trace on a device node is refused" "it is a device" fail - -- $MPIRUN -n 2 "${ddp[@]}" --trace fullnode
in_fresh_dir "--save-model on a FIFO is refused (no reader waits for ever)" "it is a FIFO" fail - -- \
  $MPIRUN -n 2 "${pipe[@]}" --save-model fifo
in_fresh_dir "--save-model on a directory is refused" "it is a directory" fail - -- $MPIRUN -n 2 "${ddp[@]}" --save-model folder
setup_dir() { ln -s target.json "$1/link.json"; }
in_fresh_dir "--metrics-json on a symlink writes its target, the link stays" - ok "target.json" -- \
  bash -c "$MPIRUN -n 2 ${ddp[*]} --metrics-json link.json && [ -L link.json ] && grep -q '\"steps\" : 5' target.json"
setup_dir() { :; }

# 2-3. Flags that differ between ranks (MPMD): every rank stops, naming the flag.
in_fresh_dir "--save-model on one rank only" "ranks disagree on --save-model/--metrics-json/--trace" fail - -- \
  $MPIRUN -n 1 "${ddp[@]}" --save-model m.safetensors : -n 1 "${ddp[@]}"
in_fresh_dir "--trace on one rank only (not a 'died' watchdog report)" "ranks disagree on --save-model/--metrics-json/--trace" fail - -- \
  $MPIRUN -n 1 "${ddp[@]}" : -n 1 "${ddp[@]}" --trace t.json
in_fresh_dir "--skip-nonfinite on one rank only" "ranks disagree on --skip-nonfinite" fail - -- \
  $MPIRUN -n 1 "${ddp[@]}" --skip-nonfinite : -n 1 "${ddp[@]}"
in_fresh_dir "--lr on one rank only: a readable mismatch, no struct dump" "ranks disagree on the optimizer: rank 0 has momentum.*lr 0.1 \(no scaling" fail - -- \
  $MPIRUN -n 1 "${ddp[@]}" --lr 0.1 : -n 1 "${ddp[@]}" --lr 0.05

# 4. Output paths are checked before training (a long run fails at once).
in_fresh_dir "--save-model in a missing directory fails before training" "its directory /nonexistent/dir does not exist" fail - -- \
  timeout 20 $MPIRUN -n 2 "$BIN/ddp-train" --dataset synthetic --epochs 50 --save-model /nonexistent/dir/m.safetensors
in_fresh_dir "--metrics-json in a missing directory, pipe-train" "does not exist" fail - -- \
  timeout 20 $MPIRUN -n 2 "$BIN/pipe-train" --dataset synthetic --epochs 50 --metrics-json /nonexistent/m.json
setup_dir() { echo partial > "$1/m.safetensors.tmp.4242"; }
in_fresh_dir "a model file's temporary left by a crashed save is removed by the next run" - ok "m.safetensors" -- \
  bash -c "$MPIRUN -n 2 ${ddp[*]} --save-model m.safetensors && [ ! -e m.safetensors.tmp.4242 ]"
setup_dir() { :; }
in_fresh_dir "two outputs naming one file" "--save-model and --trace name the same file x" fail - -- \
  $MPIRUN -n 2 "${ddp[@]}" --save-model x --trace x
in_fresh_dir "allreduce-bench --csv in a missing directory fails before measuring" "its directory /nonexistent does not exist" fail - -- \
  timeout 20 $MPIRUN -n 2 "$BIN/allreduce-bench" --csv /nonexistent/a.csv

# 5-6. Sizes that cannot fit or overflow: refused with the figure, no backtrace.
in_fresh_dir "--hidden 100000000000: refused with the memory it needs" "need about [0-9.]+ GB per rank, but each of the 2 ranks on this node has" fail - -- \
  $MPIRUN -n 2 "${ddp[@]}" --hidden 100000000000
in_fresh_dir "pipe-train --hidden 100000000: the same for a pipeline" "need about [0-9.]+ GB per rank" fail - -- \
  $MPIRUN -n 2 "${pipe[@]}" --hidden 100000000,16
in_fresh_dir "--hidden 9223372036854775807 (overflows)" "more parameters or activations than this machine can count" fail - -- \
  $MPIRUN -n 2 "${ddp[@]}" --hidden 9223372036854775807
in_fresh_dir "--bucket-mb 1e13" "--bucket-mb must be at most" fail - -- $MPIRUN -n 2 "${ddp[@]}" --bucket-mb 1e13
in_fresh_dir "--batch-size 9223372036854775807" "batch of 9223372036854775807|fewer than one global batch" fail - -- \
  $MPIRUN -n 2 "${ddp[@]}" --batch-size 9223372036854775807
in_fresh_dir "--epochs 9223372036854775807 --steps 3 ends after its 3 steps" "done: 3 steps" ok - -- \
  $MPIRUN -n 2 "${ddp[@]}" --epochs 9223372036854775807 --steps 3
in_fresh_dir "--seed 18446744073709551615 writes its metrics" - ok "s.json" -- \
  bash -c "$MPIRUN -n 2 ${ddp[*]} --seed 18446744073709551615 --metrics-json s.json && grep -q '\"seed\" : 18446744073709551615' s.json"
in_fresh_dir "--timeout 1e300" "--timeout must be at most" fail - -- $MPIRUN -n 2 "${ddp[@]}" --timeout 1e300
in_fresh_dir "--lr 1e38 --lr-scale linear on 4 ranks" "is not a finite number" fail - -- $MPIRUN -n 4 "${ddp[@]}" --lr 1e38 --lr-scale linear

# 7. Resume: the right stage and field named, another tool's checkpoints refused, stray
#    temporaries cleaned, damaged data detected.
hk=("$BIN/pipe-train" --dataset synthetic --model mlp --hidden 16,16 --stages 2 --steps 6 --checkpoint-every 2 --timeout 10 --threads 1)
dk=("$BIN/ddp-train" --dataset synthetic --model mlp --hidden 16 --steps 6 --checkpoint-every 2 --timeout 10 --threads 1)
mkdir -p "$WORK/res"
run "pipe-train writes stage checkpoints" 120 $MPIRUN -n 2 "${hk[@]}" --checkpoint-dir "$WORK/res/pipe"
run "ddp-train writes checkpoints" 120 $MPIRUN -n 2 "${dk[@]}" --checkpoint-dir "$WORK/res/ddp"
cp -r "$WORK/res/pipe" "$WORK/res/pipe-no1" && rm -rf "$WORK/res/pipe-no1/stage-1"
expect_failure "resume with stage-1's checkpoints removed names stage-1" "stage-1 has no usable checkpoint, while other ranks have one of step 6" \
  $MPIRUN -n 2 "${hk[@]}" --steps 8 --checkpoint-dir "$WORK/res/pipe-no1" --resume
expect_failure "resume with another --split names the stage layout" "its stage_layers is" \
  $MPIRUN -n 2 "${hk[@]}" --steps 8 --split 3 --checkpoint-dir "$WORK/res/pipe" --resume
expect_failure "pipe-train on a ddp-train checkpoint directory is refused" "holds checkpoints of a run that keeps them in one folder" \
  $MPIRUN -n 2 "${hk[@]}" --checkpoint-dir "$WORK/res/ddp" --resume
run "... and made no stage folders in it" 10 bash -c "! ls '$WORK/res/ddp' | grep -q stage-"
expect_failure "ddp-train on a pipe-train checkpoint directory is refused" "holds checkpoints of a run that keeps a folder per pipeline stage or server" \
  $MPIRUN -n 2 "${dk[@]}" --checkpoint-dir "$WORK/res/pipe" --resume
echo partial > "$WORK/res/ddp/step-00000008.ckpt.safetensors.tmp.4242"
run "a save's stray temporary file is removed by the next run" 120 bash -c \
  "$MPIRUN -n 2 ${dk[*]} --steps 8 --checkpoint-dir $WORK/res/ddp --resume >/dev/null 2>&1 && ! ls $WORK/res/ddp | grep -q tmp"
cp -r "$WORK/res/ddp" "$WORK/res/ddp-flip"
newest=$(ls "$WORK/res/ddp-flip" | grep ckpt | sort | tail -1)
python3 -c "
import sys; p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[-5] ^= 0x10; open(p, 'wb').write(b)" "$WORK/res/ddp-flip/$newest"
run "a flipped bit in the newest checkpoint's data is detected and the previous one used" 120 bash -c \
  "$MPIRUN -n 2 ${dk[*]} --steps 10 --checkpoint-dir $WORK/res/ddp-flip --resume >$WORK/flip.log 2>&1 && grep -q 'does not match its checksum' $WORK/flip.log && grep -q 'resumed from step 6' $WORK/flip.log"
run "the model file says which tool and Chorus version wrote it" 120 bash -c \
  "$MPIRUN -n 2 ${ddp[*]} --save-model $WORK/res/tool.safetensors >/dev/null && head -c 400 $WORK/res/tool.safetensors | grep -q '\"tool\":\"ddp-train\"' && head -c 400 $WORK/res/tool.safetensors | grep -q chorus_version"

# 8. Messages.
touch "$WORK/res/afile"
expect_failure "pipe-train --checkpoint-dir on a file" "exists and is not one" $MPIRUN -n 2 "${hk[@]}" --checkpoint-dir "$WORK/res/afile"
expect_failure "--hidden -64" "hidden must be positive integers" $MPIRUN -n 2 "${ddp[@]}" --hidden -64
mkdir -p "$WORK/labels" "$WORK/notest"
python3 - "$WORK/labels" "$WORK/notest" <<'PY'
import struct, sys
def idx(path, code, dims, data):
    with open(path, 'wb') as f:
        f.write(struct.pack('>BBBB', 0, 0, code, len(dims)) + b''.join(struct.pack('>I', d) for d in dims) + bytes(data))
for d, test in ((sys.argv[1], 8), (sys.argv[2], 0)):
    idx(f'{d}/train-images-idx3-ubyte', 8, [64, 28, 28], [7] * (64 * 784))
    idx(f'{d}/train-labels-idx1-ubyte', 8, [64], [i % 10 for i in range(64)] if test == 0 else [12 if i == 37 else i % 10 for i in range(64)])
    idx(f'{d}/t10k-images-idx3-ubyte', 8, [test, 28, 28], [7] * (test * 784))
    idx(f'{d}/t10k-labels-idx1-ubyte', 8, [test], [1] * test)
PY
expect_failure "an out-of-range label names the file and the item" "train-labels-idx1-ubyte: label 12 of item 37 is out of range" \
  $MPIRUN -n 2 "$BIN/ddp-train" --data-dir "$WORK/labels" --steps 1 --batch-size 8
run "no test images: accuracy is n/a, null in the metrics" 120 bash -c \
  "$MPIRUN -n 2 $BIN/ddp-train --data-dir $WORK/notest --steps 2 --batch-size 8 --metrics-json $WORK/notest.json >$WORK/notest.log 2>&1 && grep -q 'test accuracy n/a' $WORK/notest.log && grep -q '\"test_accuracy\" : null' $WORK/notest.json"
expect_failure "allreduce-bench sizes that are not whole floats" "--min-bytes must be a multiple of 4" $MPIRUN -n 2 "$BIN/allreduce-bench" --min-bytes 6 --max-bytes 14
expect_failure "allreduce-bench with an algorithm twice" "--algorithms names ring more than once" $MPIRUN -n 2 "$BIN/allreduce-bench" --algorithms ring,ring

section end; echo "mpi: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
