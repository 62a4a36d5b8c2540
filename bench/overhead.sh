#!/usr/bin/env bash
# Per-op overhead: the stories260K perplexity pass (200 windows of 256 tokens, TinyStories validation subset),
# whole process, `qpruner eval-ppl` against the same pass written in PyTorch (bench/torch_reference_ppl.py,
# Debian's python3-torch 1.13), run alternately --reps times; prints medians and the ratio.
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
ours=() theirs=() ppl_ours="" ppl_theirs=""
for _ in $(seq "$REPS"); do
  s=$(date +%s.%N)
  ppl_ours=$("$BUILD/app/qpruner" eval-ppl "$M" --tokenizer "$TOK" --file "$TEXT" --seq-len 256 --max-windows 200 \
               --batch-size 4 --threads "$THREADS" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["ppl"])')
  ours+=("$(python3 -c "print($(date +%s.%N) - $s)")")
  s=$(date +%s.%N)
  ppl_theirs=$(/usr/bin/python3 "$ROOT/bench/torch_reference_ppl.py" "$M" "$TOK" "$TEXT" --windows 200 \
                 --threads "$THREADS" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ppl"])')
  theirs+=("$(python3 -c "print($(date +%s.%N) - $s)")")
done
python3 - "$ppl_ours" "$ppl_theirs" "${ours[*]}" "${theirs[*]}" <<'PY'
import statistics, sys
po, pt, o, t = sys.argv[1], sys.argv[2], [float(x) for x in sys.argv[3].split()], [float(x) for x in sys.argv[4].split()]
mo, mt = statistics.median(o), statistics.median(t)
print(f"stories260K perplexity pass, 200 x 256 tokens, whole process (median of {len(o)})")
print("| | ppl | seconds | tokens/s |")
print("|---|---|---|---|")
print(f"| qpruner eval-ppl | {float(po):.6f} | {mo:.2f} | {200 * 255 / mo:,.0f} |")
print(f"| PyTorch (Python) | {float(pt):.6f} | {mt:.2f} | {200 * 255 / mt:,.0f} |")
print(f"qpruner is {mt / mo:.2f}x the reference")
PY
