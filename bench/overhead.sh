#!/usr/bin/env bash
# Per-op overhead: the stories260K perplexity pass (200 windows of 256 tokens, TinyStories validation subset),
# whole process, `qpruner eval-ppl` (with our CPU kernels, and with QPRUNER_KERNELS=libtorch) against the same
# pass written in PyTorch (bench/torch_reference_ppl.py, Debian's python3-torch 1.13), run alternately --reps
# times; prints medians and the ratio.
#   bench/overhead.sh [--reps 5] [--threads N]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${QPRUNER_BUILD_DIR:-$ROOT/build}"
DATA="${QPRUNER_SHARED_DATA:-$ROOT/../shared/data}"
REPS=5 THREADS=$(nproc)
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) REPS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    *) echo "overhead.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
cmake --build "$BUILD" --target qpruner > /dev/null
M="$DATA/models/stories260K/stories260K.bin" TOK="$DATA/models/stories260K/tok512.model"
TEXT="$DATA/text/tinystories/tinystories_valid_subset.txt"
rows=()
for _ in $(seq "$REPS"); do # alternately: whole-process seconds, the pass's own seconds, ppl
  s=$(date +%s.%N)
  j=$("$BUILD/app/qpruner" eval-ppl "$M" --tokenizer "$TOK" --file "$TEXT" --seq-len 256 --max-windows 200 \
        --batch-size 4 --threads "$THREADS" --json)
  rows+=("ours $(python3 -c "print($(date +%s.%N) - $s)") $(echo "$j" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["seconds"], j["ppl"])')")
  s=$(date +%s.%N)
  j=$(QPRUNER_KERNELS=libtorch "$BUILD/app/qpruner" eval-ppl "$M" --tokenizer "$TOK" --file "$TEXT" --seq-len 256 \
        --max-windows 200 --batch-size 4 --threads "$THREADS" --json)
  rows+=("libtorch $(python3 -c "print($(date +%s.%N) - $s)") $(echo "$j" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["seconds"], j["ppl"])')")
  s=$(date +%s.%N)
  j=$(/usr/bin/python3 "$ROOT/bench/torch_reference_ppl.py" "$M" "$TOK" "$TEXT" --windows 200 --threads "$THREADS")
  rows+=("torch $(python3 -c "print($(date +%s.%N) - $s)") $(echo "$j" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["pass_seconds"], j["ppl"])')")
done
printf '%s\n' "${rows[@]}" | python3 -c '
import statistics, sys
rows = [l.split() for l in sys.stdin if l.strip()]
med = lambda who, i: statistics.median(float(r[i]) for r in rows if r[0] == who)
ppl = {r[0]: float(r[3]) for r in rows}
n = 200 * 255
print(f"stories260K perplexity pass, 200 x 256 tokens (median of {len(rows) // 3} alternating runs)")
print("| | ppl | whole process s | tokens/s | pass only s | tokens/s |")
print("|---|---|---|---|---|---|")
for who, name in (("ours", "qpruner eval-ppl"), ("libtorch", "qpruner, QPRUNER_KERNELS=libtorch"),
                  ("torch", "PyTorch (Python)")):
    print(f"| {name} | {ppl[who]:.6f} | {med(who, 1):.2f} | {n / med(who, 1):,.0f} | {med(who, 2):.2f} | {n / med(who, 2):,.0f} |")
whole, single = med("torch", 1) / med("ours", 1), med("torch", 2) / med("ours", 2)
print(f"qpruner / reference: {whole:.2f}x whole process, {single:.2f}x pass only")
'
