#!/usr/bin/env bash
# Each family's published shape against real llama.cpp: a random model (`make-random --preset P`, float32), exported
# by us to an F32 GGUF with the family's real tokenizer, then greedy ids and teacher-forced log-probs from llama.cpp
# (tests/tools/llamacpp_reference.mjs) against ours (the same comparison test_families makes on test-sized models).
#   bench/families_llamacpp.sh [BUILD_DIR] [PRESET:TOKENIZER ...]
# Needs node-llama-cpp in BUILD_DIR/npm/node_modules (scripts/run-tests.sh installs it) and ../shared/data.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
shift || true
DATA="${QPRUNER_SHARED_DATA:-$ROOT/../shared/data}"
QP="$BUILD/app/qpruner"
WORK="${QPRUNER_BENCH_DIR:-/tmp/qpruner-families}"
STEPS="${STEPS:-64}"
mkdir -p "$WORK"
PAIRS=("$@")
if [ ${#PAIRS[@]} -eq 0 ]; then
  PAIRS=("qwen3-0.6b:$DATA/tokenizers/qwen3/tokenizer.json" "gemma-3-1b:$DATA/tokenizers/gemma-3/tokenizer.json"
         "llama-3.2-1b:$DATA/tokenizers/llama-3.1/tokenizer.json")
fi
for pair in "${PAIRS[@]}"; do
  preset="${pair%%:*}"; tok="${pair#*:}"
  dir="$WORK/$preset"
  [ -d "$dir" ] || "$QP" make-random --preset "$preset" --out "$dir" > /dev/null
  [ -f "$dir.gguf" ] || "$QP" export "$dir" --to gguf --tokenizer "$tok" --name "random $preset" --out "$dir.gguf" > /dev/null
  # generate counts positions including its prompt (BOS + "Once upon a time", under 16 tokens here).
  ours=$("$QP" generate "$dir" --tokenizer "$tok" --prompt "Once upon a time" --steps $((16 + STEPS)) --temperature 0 \
         --json --threads 2)
  prompt=$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1])["prompt_ids"]))' "$ours")
  n=$(python3 -c 'import json,sys; print(len(json.loads(sys.argv[1])))' "$prompt")
  made=$(python3 -c 'import json,sys; print(len(json.loads(sys.argv[1])["generated_ids"]))' "$ours")
  # The same generation with float64 weights and matmuls: how far each side's log-probs are from it.
  ours64=$("$QP" generate "$dir" --tokenizer "$tok" --prompt "Once upon a time" --steps $((16 + STEPS)) --temperature 0 \
           --json --threads 2 --dtype float64)
  theirs=$(NODE_MODULES="$BUILD/npm/node_modules" node "$ROOT/tests/tools/llamacpp_reference.mjs" "$dir.gguf" "$prompt" "$made")
  python3 - "$preset" "$ours" "$theirs" "$n" "$ours64" <<'PY'
import json, sys
preset, ours, theirs, n = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
ref = json.loads(sys.argv[5])
assert ours["prompt_ids"] == theirs["tokens"][:n], "prompt ids differ"
a, b = ours["generated_ids"], theirs["greedy"][:len(ours["generated_ids"])]
same = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), len(a))
# Generated token i sits at position n + i; llama.cpp's logprobs[t] is log p(token t+1 | tokens 0..t).
diff = max(abs(lp - theirs["logprobs"][n - 1 + i]) for i, lp in enumerate(ours["logprobs"][:same]))
common = next((i for i, (x, y) in enumerate(zip(a, ref["generated_ids"])) if x != y), len(a))
common = min(common, same)
ours_err = max(abs(ours["logprobs"][i] - ref["logprobs"][i]) for i in range(common))
theirs_err = max(abs(theirs["logprobs"][n - 1 + i] - ref["logprobs"][i]) for i in range(common))
print(json.dumps({"preset": preset, "prompt_tokens": n, "generated": len(a), "identical_greedy_ids": same,
                  "max_logprob_diff": diff, "float64_ids_agree": common,
                  "from_float64": {"ours": ours_err, "llama_cpp": theirs_err}}))
PY
done
