#!/usr/bin/env python3
"""Does recovery fine-tuning on a mixed-precision pruned model reach the 16-bit pruned model's perplexity?

The TinyStories subset is split at a line boundary: the first 90% of its characters is the recovery data
(`qpruner finetune --format text`, which holds out its last 5% of windows for validation and best-adapter
selection), the last 10% is the test text every perplexity below is measured on (eval-ppl, windows of 256).
For each pruning ratio, stories260K is pruned (qpruner prune, Taylor, default calibration), scored (quant-kl) and
given an importance-aware map under --budget (allocate --method greedy over nf4/int8/bf16), and then:

    dense | pruned (fp32) | pruned + map | pruned + uniform nf4 | each map recovered with LoRA init and LoftQ init

all recoveries with the same settings (--steps, batch 16 x 256 tokens, lr 1e-3, warmup 20, cosine, rank 8,
alpha 16, dropout 0.05, all seven projections). The peak memory of recovery is taken from each run's
training.json (peak RSS during training, its growth over the RSS at the start, and estimateFinetune's
prediction), including a uniform bf16 run at the first ratio for the 16-bit comparison.

    bench/recovery_evidence.py --qpruner build/app/qpruner [--ratios 0.25,0.5] [--steps 150] [--jobs 2]

Uses only the CLI. Prints Markdown tables; --json-out FILE saves everything.
"""
import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile

MODEL = "models/stories260K/stories260K.bin"
TOKENIZER = "models/stories260K/tok512.model"
TEXT = "text/tinystories/tinystories_valid_subset.txt"


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"failed ({out.returncode}): {' '.join(cmd)}\n{out.stderr}")
    return out.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qpruner", default="build/app/qpruner")
    ap.add_argument("--data", default=os.environ.get("QPRUNER_SHARED_DATA", "../shared/data"))
    ap.add_argument("--ratios", default="0.25,0.5")
    ap.add_argument("--budget", default="6bpw")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--work", default=None, help="working directory (default: a temporary one)")
    ap.add_argument("--json-out", default=None)
    a = ap.parse_args()
    q, data = a.qpruner, a.data
    work = a.work or tempfile.mkdtemp(prefix="recovery-evidence-")
    os.makedirs(work, exist_ok=True)
    model, tok = os.path.join(data, MODEL), os.path.join(data, TOKENIZER)

    text = open(os.path.join(data, TEXT), encoding="utf-8").read()
    cut = text.index("\n", int(len(text) * 0.9)) + 1
    train_file, test_file = os.path.join(work, "train.txt"), os.path.join(work, "test.txt")
    open(train_file, "w", encoding="utf-8").write(text[:cut])
    open(test_file, "w", encoding="utf-8").write(text[cut:])

    def ppl(m, *extra):
        out = run([q, "eval-ppl", m, "--tokenizer", tok, "--file", test_file, "--seq-len", "256", "--threads", "1",
                   "--json", *extra])
        return json.loads(out)["ppl"]

    def finetune(m, out_dir, map_args, init):
        run([q, "finetune", m, "--tokenizer", tok, *map_args, "--data", train_file, "--format", "text",
             "--seq-len", "256", "--val-fraction", "0.05", "--init", init, "--steps", str(a.steps),
             "--batch-size", "16", "--micro-batch", "8", "--lr", "1e-3", "--warmup", "20", "--eval-every", "25",
             "--save-every", "0", "--threads", "1", "--out", out_dir, "--json"])
        t = json.load(open(os.path.join(out_dir, "training.json")))
        return {"ppl": ppl(m, "--adapter", out_dir), "training": t}

    results = {"dense": ppl(model), "ratios": {}}
    jobs = []
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
        for r in [float(x) for x in a.ratios.split(",")]:
            d = os.path.join(work, f"r{r}")
            os.makedirs(d, exist_ok=True)
            pruned = os.path.join(d, "pruned")
            run([q, "prune", model, "--tokenizer", tok, "--ratio", str(r), "--threads", "1", "--out", pruned])
            scores, mixed = os.path.join(d, "scores.json"), os.path.join(d, "map.json")
            run([q, "importance", pruned, "--tokenizer", tok, "--metrics", "quant-kl", "--threads", "1",
                 "--out", scores])
            alloc = json.loads(run([q, "allocate", pruned, "--scores", scores, "--budget", a.budget,
                                    "--method", "greedy", "--out", mixed, "--json"]))
            res = {"pruned": ppl(pruned), "map": json.load(open(mixed)), "allocation": alloc.get("best", alloc)}
            maps = {"mixed": ["--map", mixed], "nf4": ["--uniform", "nf4"]}
            res["quantized"] = {"mixed": ppl(pruned, "--map", mixed), "nf4": ppl(pruned, "--format", "nf4")}
            res["recovered"] = {}
            for name, margs in maps.items():
                for init in ("lora", "loftq"):
                    jobs.append(((r, name, init), pool.submit(finetune, pruned, os.path.join(d, f"{name}-{init}"),
                                                               margs, init)))
            if r == float(a.ratios.split(",")[0]):
                jobs.append(((r, "bf16", "lora"), pool.submit(finetune, pruned, os.path.join(d, "bf16-lora"),
                                                               ["--uniform", "bf16"], "lora")))
            results["ratios"][str(r)] = res
        for (r, name, init), fut in jobs:
            results["ratios"][str(r)]["recovered"][f"{name}-{init}"] = fut.result()

    print(f"dense stories260K: test ppl {results['dense']:.3f}\n")
    print("| prune | map | weights | pruned fp32 | quantized | recovered, LoRA init | recovered, LoftQ init |")
    print("|---|---|---|---|---|---|---|")
    for r, res in results["ratios"].items():
        rec = res["recovered"]
        for name in ("mixed", "nf4", "bf16"):
            if f"{name}-lora" not in rec:
                continue
            size = rec[f"{name}-lora"]["training"]["memory"]["predicted"]["base_weight_bytes"]
            quantized = res["quantized"].get(name)
            quantized = "-" if quantized is None else f"{quantized:.3f}"
            loftq = rec.get(f"{name}-loftq")
            loftq = "-" if loftq is None else f"{loftq['ppl']:.3f}"
            print(f"| {float(r):.0%} | {name} | {size / 1024:.1f} KiB | {res['pruned']:.3f} | {quantized} | "
                  f"{rec[f'{name}-lora']['ppl']:.3f} | {loftq} |")
    print("\nInitial error ||W - (Q + AB)|| / ||W|| over all adapted linears (LoftQ T=1):\n")
    print("| prune | map | LoRA init | LoftQ init |")
    print("|---|---|---|---|")
    for r, res in results["ratios"].items():
        for name in ("mixed", "nf4"):
            m = res["recovered"][f"{name}-loftq"]["training"]["init"]["model"]
            print(f"| {float(r):.0%} | {name} | {m['lora_init_error']:.4f} | {m['loftq_errors'][-1]:.4f} |")
    print("\nPeak memory of recovery (batch 8 x 256 per pass, rank 8, fp32 adapters):\n")
    print("| prune | map | init | peak RSS | growth during training | predicted (estimateFinetune) | predicted weights |")
    print("|---|---|---|---|---|---|---|")
    for r, res in results["ratios"].items():
        for key, rec in res["recovered"].items():
            mem = rec["training"]["memory"]
            print(f"| {float(r):.0%} | {key.split('-')[0]} | {key.split('-')[1]} | "
                  f"{mem['measured_peak_rss_bytes'] / 2**20:.1f} MiB | "
                  f"{mem['measured_peak_rss_delta_bytes'] / 2**20:.1f} MiB | "
                  f"{mem['predicted']['total_bytes'] / 2**20:.1f} MiB | "
                  f"{mem['predicted']['base_weight_bytes'] / 1024:.1f} KiB |")
    if a.json_out:
        json.dump(results, open(a.json_out, "w"), indent=1)


if __name__ == "__main__":
    main()
