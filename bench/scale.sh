#!/usr/bin/env bash
# Speed at the sizes researchers use, on this machine: randomly initialised TinyLlama-shaped 1.1B and
# stories110M-shaped models (stored bf16, as most checkpoints are), the perplexity pass in tokens/s per storage
# and format, next to real llama.cpp (node-llama-cpp's prebuilt CPU binaries) on the same models exported by us;
# then (--pipeline) the whole pipeline on one size: seconds, cost in forward-pass multiples and peak RSS per stage.
#
#   bench/scale.sh [--sizes 110m,1b] [--reps 3] [--windows 4] [--threads 2] [--pipeline 1b] [--memory 7b]
#                  [--skip-speed] [--skip-llamacpp]
#
# The *-libtorch variants run with QPRUNER_KERNELS=libtorch: libtorch's own matmuls and attention instead of ours.
#
# --memory SIZE: peak RSS of mi + bi importance (8 x 256 tokens; skipped when its scores file exists) and of one
# search trial (8 x 256 validation tokens, quantized variants in mapped files) on a model too large to hold twice.
#
# Models, GGUF files and logs go to $QPRUNER_SCALE_DIR (default build/scale; ~12 GB for 1b, 13 GB more for 7b).
# Builds the qpruner CLI in $QPRUNER_BUILD_DIR (default build) and installs node-llama-cpp@3.21.1 into
# $BUILD/llamacpp. Prints the tables last (bench/scale_table.py); the JSON lines stay in $QPRUNER_SCALE_OUT
# (default $QPRUNER_SCALE_DIR/scale.jsonl, emptied first).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${QPRUNER_BUILD_DIR:-$ROOT/build}"
WORK="${QPRUNER_SCALE_DIR:-$BUILD/scale}"
DATA="${QPRUNER_SHARED_DATA:-$ROOT/../shared/data}"
SIZES=110m,1b REPS=3 WINDOWS=4 THREADS=$(nproc) PIPELINE="" MEMORY="" SPEED=1 LLAMACPP=1
while [ $# -gt 0 ]; do
  case "$1" in
    --sizes) SIZES="$2"; shift 2 ;;
    --reps) REPS="$2"; shift 2 ;;
    --windows) WINDOWS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --pipeline) PIPELINE="$2"; shift 2 ;;
    --memory) MEMORY="$2"; shift 2 ;;
    --skip-speed) SPEED=0; shift ;;
    --skip-llamacpp) LLAMACPP=0; shift ;;
    *) echo "scale.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

mkdir -p "$WORK"
cmake --build "$BUILD" --target qpruner > /dev/null
QP="$BUILD/app/qpruner"
TOK="$DATA/models/llama2-tokenizer/tokenizer.model"
TEXT="$DATA/text/wikitext-2-raw/wiki.test.raw"
OUT="${QPRUNER_SCALE_OUT:-$WORK/scale.jsonl}"
: > "$OUT"
LLAMA_DIR="$BUILD/llamacpp"
if [ ! -d "$LLAMA_DIR/node_modules/node-llama-cpp" ]; then
  mkdir -p "$LLAMA_DIR"
  (cd "$LLAMA_DIR" && [ -f package.json ] || echo '{"private": true}' > package.json
   cd "$LLAMA_DIR" && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --no-audit --no-fund node-llama-cpp@3.21.1 > npm.log 2>&1)
fi
cp "$ROOT/bench/llamacpp_pp.mjs" "$LLAMA_DIR/"

# CPU flags next to every number.
python3 - "$OUT" <<'PY'
import json, sys, platform, re
flags = open("/proc/cpuinfo").read()
model = re.search(r"model name\s*:\s*(.*)", flags).group(1)
want = ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_bf16", "amx_bf16"]
have = set(re.search(r"flags\s*:\s*(.*)", flags).group(1).split())
with open(sys.argv[1], "a") as f:
    f.write(json.dumps({"bench": "cpu", "model": model, "flags": [w for w in want if w in have]}) + "\n")
PY

median_of() { python3 -c "import sys,statistics; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }

ppl_pass() { # size variant args...: REPS eval-ppl runs, one JSON line with the median tokens/s
  local size="$1" variant="$2"; shift 2
  local rates=() rss=() line
  for _ in $(seq "$REPS"); do
    line=$(/usr/bin/time -f "RSS %M" "$QP" eval-ppl "$WORK/$size" --tokenizer "$TOK" --file "$TEXT" --seq-len 256 \
             --max-windows "$WINDOWS" --batch-size 1 --threads "$THREADS" --json "$@" 2> "$WORK/err.txt")
    rates+=("$(echo "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens_per_second"])')")
    rss+=("$(grep -o 'RSS [0-9]*' "$WORK/err.txt" | tail -1 | cut -d' ' -f2)")
    compute=$(echo "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["compute"]["dtype"])')
  done
  echo "{\"bench\": \"qpruner_pp\", \"size\": \"$size\", \"variant\": \"$variant\", \"compute\": \"$compute\"," \
       "\"tokens_per_second_median\": $(median_of "${rates[@]}"), \"peak_rss_kib\": $(median_of "${rss[@]}")," \
       "\"tokens_per_second\": [$(IFS=,; echo "${rates[*]}")]}" | tee -a "$OUT"
}

llama_pass() { # size type map-args...: export GGUF (kept), then node-llama-cpp prompt processing
  local size="$1" type="$2"; shift 2
  local gguf="$WORK/$size-$type.gguf"
  [ -f "$gguf" ] || "$QP" export "$WORK/$size" --to gguf --tokenizer "$TOK" --out "$gguf" --threads "$THREADS" "$@" > /dev/null
  (cd "$LLAMA_DIR" && node llamacpp_pp.mjs "$gguf" --seq 256 --windows "$WINDOWS" --reps "$REPS" --threads "$THREADS") |
    python3 -c "import json,sys; r=json.loads(sys.stdin.readlines()[-1]); r.update(size='$size', type='$type'); print(json.dumps(r))" |
    tee -a "$OUT"
}

write_maps() { # the maps the tables name, for a model of $1 layers
  python3 - "$WORK" "$1" <<'PY'
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
mixed = {"version": 1, "default": "nf4",
         "layers": {str(l): ("bf16" if l in (0, n - 1) else ("nf4" if l % 2 else "int8")) for l in range(n)}}
json.dump(mixed, open(f"{work}/mixed-{n}.json", "w"))
json.dump({"version": 1, "default": "fp32", "embedding": "fp32", "lm_head": "fp32"}, open(f"{work}/f32.json", "w"))
PY
}

if [ "$SPEED" = 1 ]; then
  for size in ${SIZES//,/ }; do
    [ -d "$WORK/$size" ] || "$QP" make-random --preset "$size" --dtype bfloat16 --seed 0 --out "$WORK/$size" > /dev/null
    layers=$("$QP" info "$WORK/$size" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["num_layers"])')
    write_maps "$layers"
    ppl_pass "$size" fp32 --dtype float32
    ppl_pass "$size" bf16
    ppl_pass "$size" int8 --format int8
    ppl_pass "$size" nf4 --format nf4
    ppl_pass "$size" int4 --format int4
    ppl_pass "$size" mixed --map "$WORK/mixed-$layers.json"
    # The same through libtorch's own kernels (OpenBLAS products of decoded blocks, matmul-softmax attention).
    QPRUNER_KERNELS=libtorch ppl_pass "$size" fp32-libtorch --dtype float32
    QPRUNER_KERNELS=libtorch ppl_pass "$size" int8-libtorch --format int8
    QPRUNER_KERNELS=libtorch ppl_pass "$size" nf4-libtorch --format nf4
    [ "$LLAMACPP" = 1 ] || continue
    llama_pass "$size" F32 --map "$WORK/f32.json"
    llama_pass "$size" BF16 --format bf16
    llama_pass "$size" Q8_0 --format int8
    llama_pass "$size" Q4_0 --format nf4 --nf4-type q4_0
    llama_pass "$size" IQ4_NL --format nf4
  done
fi

if [ -n "$PIPELINE" ]; then
  size="$PIPELINE"
  [ -d "$WORK/$size" ] || "$QP" make-random --preset "$size" --dtype bfloat16 --seed 0 --out "$WORK/$size" > /dev/null
  db="$WORK/pipeline-$size.db"
  rm -f "$db" "$db-wal" "$db-shm"; rm -rf "$WORK/pipeline-$size-runs"
  python3 - "$WORK" "$size" "$TOK" <<'PY'
import json, sys
work, size, tok = sys.argv[1:4]
calib = {"source": "wikitext2", "samples": 8, "seq_len": 256}
json.dump({
    "version": 1, "experiment": "scale", "model": f"{work}/{size}", "tokenizer": tok, "dtype": "bf16",
    "workdir": f"{work}/pipeline-{size}-runs",
    "prune": {"ratio": 0.2, "calibration": calib},
    "importance": {"metric": "quant-kl", "metrics": ["mi", "bi", "quant-kl", "taylor"], "calibration": calib},
    "allocate": {"budget": "6bpw"},
    "search": {"trials": 12, "initial_samples": 4, "validation": {"source": "wikitext2", "windows": 8, "seq_len": 256}},
    "finetune": {"data": "wikitext2", "format": "text", "steps": 20, "warmup": 2, "batch_size": 4, "micro_batch": 1,
                 "seq_len": 256, "eval_every": 0, "max_val": 16},
    "evaluate": {"ppl": [{"source": "wikitext2", "windows": 8, "seq_len": 256}]},
}, open(f"{work}/pipeline-{size}.json", "w"), indent=1)
PY
  /usr/bin/time -f "RSS %M" "$QP" run "$WORK/pipeline-$size.json" --db "$db" --threads "$THREADS" --json \
      > "$WORK/pipeline-$size.out" 2> "$WORK/pipeline-$size.err"
  pruned=$(python3 -c "import json,sys; print(json.load(open('$WORK/pipeline-$size.out'))['stages']['prune']['checkpoint'])")
  # One forward pass over the same 8 x 256 tokens, dense, for the multiples (pruned and unpruned model).
  for m in "$pruned" "$WORK/$size"; do
    "$QP" eval-ppl "$m" --tokenizer "$TOK" --file "$TEXT" --seq-len 256 --max-windows 8 --batch-size 4 \
        --threads "$THREADS" --json | python3 -c "import json,sys; r=json.load(sys.stdin); print(json.dumps({'bench': 'forward', 'model': '$m', 'seconds': r['seconds'], 'tokens_per_second': r['tokens_per_second']}))" | tee -a "$OUT"
  done
  python3 -c "import json; json.dump(json.load(open('$WORK/pipeline-$size.out'))['stages']['search']['chosen']['map'], open('$WORK/pipeline-$size-chosen.json', 'w'))"
  start=$(date +%s.%N)
  /usr/bin/time -f "RSS %M" "$QP" export "$pruned" --to gguf --map "$WORK/pipeline-$size-chosen.json" \
      --tokenizer "$TOK" --out "$WORK/pipeline-$size.gguf" --threads "$THREADS" > /dev/null 2> "$WORK/export.err"
  end=$(date +%s.%N)
  python3 - "$OUT" "$start" "$end" "$WORK/export.err" <<'PY'
import json, re, sys
out, start, end, err = sys.argv[1:5]
rss = re.findall(r"RSS (\d+)", open(err).read())
with open(out, "a") as f:
    f.write(json.dumps({"bench": "stage_time", "stage": "export (CLI)", "seconds": float(end) - float(start),
                        "status": "done", "peak_rss_bytes": int(rss[-1]) * 1024 if rss else None}) + "\n")
PY
  python3 - "$OUT" "$db" <<'PY'
import json, sqlite3, sys
out, db = sys.argv[1:3]
con = sqlite3.connect(db)
with open(out, "a") as f:
    for name, secs, status, result in con.execute("select name, seconds, status, result_json from stages order by id"):
        r = json.loads(result or "{}")
        f.write(json.dumps({"bench": "stage_time", "stage": name, "seconds": secs, "status": status,
                            "peak_rss_bytes": r.get("peak_rss_bytes")}) + "\n")
PY
fi

if [ -n "$MEMORY" ]; then
  size="$MEMORY"
  [ -d "$WORK/$size" ] || "$QP" make-random --preset "$size" --dtype bfloat16 --seed 0 --out "$WORK/$size" > /dev/null
  if [ ! -f "$WORK/$size-scores.json" ]; then
    /usr/bin/time -f "RSS %M elapsed %e" "$QP" importance "$WORK/$size" --tokenizer "$TOK" --calib wikitext2 \
        --samples 8 --seq-len 256 --metrics mi,bi --threads "$THREADS" --out "$WORK/$size-scores.json" \
        > /dev/null 2> "$WORK/$size-importance.err"
  fi
  db="$WORK/$size-search.db"
  rm -f "$db" "$db-wal" "$db-shm"; rm -rf "$WORK/$size-search-runs"
  /usr/bin/time -f "RSS %M elapsed %e" "$QP" search "$WORK/$size" --dtype bf16 --tokenizer "$TOK" \
      --scores "$WORK/$size-scores.json" --metric bi --budget 6bpw --trials 1 --val wikitext2 --val-windows 8 \
      --val-seq-len 256 --variant-cache disk --db "$db" --threads "$THREADS" --json \
      > "$WORK/$size-search.json" 2> "$WORK/$size-search.err"
  python3 - "$OUT" "$size" "$WORK/$size-importance.err" "$WORK/$size-search.err" "$db" <<'PY'
import json, re, sqlite3, sys
out, size, imp, search, db = sys.argv[1:6]
def rss(path):
    m = re.findall(r"RSS (\d+)(?: KB)? elapsed ([\d.]+)", open(path).read())
    return (int(m[-1][0]) * 1024, float(m[-1][1])) if m else (None, None)
con = sqlite3.connect(db)
trial = con.execute("select seconds_quantize, seconds_evaluate, objective from trials order by id limit 1").fetchone()
with open(out, "a") as f:
    for step, path in (("importance mi+bi", imp), ("search, 1 trial", search)):
        b, s = rss(path)
        row = {"bench": "memory", "size": size, "step": step, "seconds": s, "peak_rss_bytes": b}
        if step.startswith("search") and trial:
            row.update(quantize_seconds=trial[0], evaluate_seconds=trial[1], ppl=trial[2])
        f.write(json.dumps(row) + "\n")
PY
fi

python3 "$ROOT/bench/scale_table.py" "$OUT"
