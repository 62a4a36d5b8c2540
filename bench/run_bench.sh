#!/usr/bin/env bash
# Builds the benchmarks (build-bench/, Release) and prints the ratio tables. Arguments go to bench_eval, e.g.
#   bench/run_bench.sh --models stories260K,15m --reps 5
# then bench_quant (quantize/dequantize throughput per format) and bench_store (loading a 100,000-trial search
# run from the experiment store; writes a ~0.5 GB temporary database) print their own tables.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${QPRUNER_BENCH_BUILD_DIR:-$ROOT/build-bench}"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQPRUNER_BUILD_BENCH=ON \
      -DQPRUNER_BUILD_GUI=OFF -DQPRUNER_BUILD_TESTS=OFF > /dev/null
cmake --build "$BUILD" --target bench_eval bench_quant bench_store -j "$(nproc)"
OUT="$BUILD/bench_eval.jsonl"
"$BUILD/bench/bench_eval" "$@" | tee "$OUT"
python3 "$ROOT/bench/ratio_table.py" "$OUT"
"$BUILD/bench/bench_quant" | tee "$BUILD/bench_quant.jsonl"
"$BUILD/bench/bench_store" | tee "$BUILD/bench_store.jsonl"
