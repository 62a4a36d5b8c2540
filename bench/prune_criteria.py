#!/usr/bin/env python3
"""Pruning criteria compared: for each model, ratio and criterion, run `qpruner prune` and score the result with
`qpruner eval-ppl` on TinyStories and WikiText-2; print a Markdown table (perplexity, wall time and peak RSS of
pruning). With --random-110m, also time importance estimation on a random ~110M model.

    bench/prune_criteria.py --qpruner build/app/qpruner [--ratios 0.1,0.25,0.5] [--windows 40] [--random-110m]

Uses only the CLI, so it measures what a user gets. Paths are relative to the shared data directory
(QPRUNER_SHARED_DATA, default ../shared/data).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CRITERIA = ["taylor-first", "taylor-vector", "taylor-second", "taylor-mix", "l1", "l2", "random"]
MODELS = {
    "stories260K": ("models/stories260K/stories260K.bin", "models/stories260K/tok512.model"),
    "llama2xs-64d": ("models/llama2xs-64d/model.bin", "models/stories260K/tok512.model"),
}
TEXTS = {
    "TinyStories": "text/tinystories/tinystories_valid_subset.txt",
    "WikiText-2": "text/wikitext-2-raw/wiki.test.raw",
}


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def ppl(qpruner, model, tok, text, windows):
    j = run_json([qpruner, "eval-ppl", model, "--tokenizer", tok, "--file", text, "--seq-len", "256",
                  "--max-windows", str(windows), "--json"])
    return j["ppl"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qpruner", default="build/app/qpruner")
    ap.add_argument("--data", default=os.environ.get("QPRUNER_SHARED_DATA", "../shared/data"))
    ap.add_argument("--ratios", default="0.1,0.25,0.5")
    ap.add_argument("--criteria", default=",".join(CRITERIA))
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--windows", type=int, default=40, help="perplexity windows of 256 tokens per text")
    ap.add_argument("--random-110m", action="store_true", help="time importance on a random 110M model")
    ap.add_argument("--reps", type=int, default=3, help="repetitions for the 110M timing")
    a = ap.parse_args()
    d = lambda rel: os.path.join(a.data, rel)
    ratios = [float(r) for r in a.ratios.split(",")]
    crits = a.criteria.split(",")

    with tempfile.TemporaryDirectory() as tmp:
        for name in a.models.split(","):
            model, tok = d(MODELS[name][0]), d(MODELS[name][1])
            base = {t: ppl(a.qpruner, model, tok, d(f), a.windows) for t, f in TEXTS.items()}
            print(f"\n### {name}: perplexity after pruning ({a.windows} windows of 256 tokens; dense "
                  + ", ".join(f"{t} {v:.3f}" for t, v in base.items()) + ")\n")
            print("| criterion | ratio | params | " + " | ".join(f"{t} ppl" for t in TEXTS)
                  + " | prune wall s | importance s | peak RSS MiB |")
            print("|---|---|---|" + "---|" * len(TEXTS) + "---|---|---|")
            for ratio in ratios:
                for c in crits:
                    out = os.path.join(tmp, f"{name}-{c}-{ratio}")
                    r = run_json([a.qpruner, "prune", model, "--tokenizer", tok, "--ratio", str(ratio),
                                  "--criterion", c, "--out", out, "--json"])
                    wall = sum(r["seconds"].values())
                    vals = [ppl(a.qpruner, out, tok, d(f), a.windows) for f in TEXTS.values()]
                    print(f"| {c} | {ratio} | {r['after']['parameters']:,} | "
                          + " | ".join(f"{v:.3f}" for v in vals)
                          + f" | {wall:.2f} | {r['seconds']['importance']:.3f} | {r['peak_rss_bytes'] / 2**20:.0f} |")
                    sys.stdout.flush()

        if a.random_110m:
            model = os.path.join(tmp, "random110m")
            subprocess.run([a.qpruner, "make-random", "--preset", "110m", "--out", model], check=True,
                           capture_output=True)
            tok = d("models/llama2-tokenizer/tokenizer.model")
            print("\n### random 110M (12 layers, dim 768, vocab 32000): importance estimation, 10 x 64 tokens\n")
            print("| criterion | importance s (median) | runs | peak RSS MiB |")
            print("|---|---|---|---|")
            for c in ["taylor-first", "taylor-mix"]:
                times, rss = [], []
                for _ in range(a.reps):
                    r = run_json([a.qpruner, "prune", model, "--tokenizer", tok, "--ratio", "0.25", "--criterion", c,
                                  "--out", os.path.join(tmp, "p110m"), "--json"])
                    times.append(r["seconds"]["importance"])
                    rss.append(r["peak_rss_bytes"] / 2**20)
                print(f"| {c} | {statistics.median(times):.2f} | "
                      + ", ".join(f"{t:.2f}" for t in times) + f" | {statistics.median(rss):.0f} |")


if __name__ == "__main__":
    main()
