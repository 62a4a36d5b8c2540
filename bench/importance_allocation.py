#!/usr/bin/env python3
"""Does importance-aware allocation beat uniform and random precision maps at equal memory?

For each model: prune 25% (taylor-first), score every layer with the four importance metrics, then for each
candidate set and budget let greedy and probabilistic allocation pick a map from each metric. Because the small
models have 5 layers, every one of the 3^5 = 243 per-layer maps of a candidate set is evaluated too (the
oracle): each chosen map is placed among all maps that fit the same budget (its perplexity rank), next to the
best feasible map, the mean of random feasible maps (the `random` allocator, 10 seeds) and the uniform maps.

    bench/importance_allocation.py --qpruner build/app/qpruner [--models stories260K,llama2xs-64d] [--jobs 2]

TinyStories is split in two halves by line: the first half is the calibration text (pruning and importance),
the second half is where perplexity is measured (40 windows of 256 tokens), so no scored token was seen during
calibration. Uses only the CLI. Prints Markdown tables; --json-out FILE saves everything.
"""
import argparse
import concurrent.futures
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile

MODELS = {
    "stories260K": ("models/stories260K/stories260K.bin", "models/stories260K/tok512.model"),
    "llama2xs-64d": ("models/llama2xs-64d/model.bin", "models/stories260K/tok512.model"),
}
METRICS = ["mi", "bi", "quant-kl", "taylor"]
# candidate set -> budgets (average bits per decoder-linear weight)
SETS = {
    "nf4,int8,bf16": [5.5, 7.0, 10.0],
    "int3,nf4,int8": [4.0, 5.0, 6.5],
}


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"failed ({out.returncode}): {' '.join(cmd)}\n{out.stderr}")
    return out.stdout


def run_json(cmd):
    return json.loads(run(cmd))


def spearman(a, b):
    def ranks(v):
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r
    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.mean(ra), statistics.mean(rb)
    sab = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    saa = sum((x - ma) ** 2 for x in ra)
    sbb = sum((y - mb) ** 2 for y in rb)
    return sab / (saa * sbb) ** 0.5 if saa > 0 and sbb > 0 else float("nan")


def map_json(formats):
    return {"version": 1, "default": formats[0], "layers": {str(i): f for i, f in enumerate(formats)}}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qpruner", default="build/app/qpruner")
    ap.add_argument("--data", default=os.environ.get("QPRUNER_SHARED_DATA", "../shared/data"))
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--sets", default=";".join(SETS), help="candidate sets separated by ';'")
    ap.add_argument("--windows", type=int, default=40)
    ap.add_argument("--random-seeds", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=2, help="evaluations run in parallel (one thread each)")
    ap.add_argument("--epsilon", type=float, default=0.001, help="allocate --epsilon (added to every importance)")
    ap.add_argument("--oracle-from", help="reuse the oracle perplexities of an earlier --json-out file")
    ap.add_argument("--json-out")
    a = ap.parse_args()
    q = a.qpruner
    d = lambda rel: os.path.join(a.data, rel)
    results = {}

    with tempfile.TemporaryDirectory() as tmp:
        lines = open(d("text/tinystories/tinystories_valid_subset.txt"), encoding="utf-8").read().splitlines(True)
        calib, evalf = os.path.join(tmp, "calib.txt"), os.path.join(tmp, "eval.txt")
        open(calib, "w", encoding="utf-8").writelines(lines[: len(lines) // 2])
        open(evalf, "w", encoding="utf-8").writelines(lines[len(lines) // 2:])

        for name in a.models.split(","):
            model, tok = d(MODELS[name][0]), d(MODELS[name][1])
            pruned = os.path.join(tmp, name + "-p25")
            run([q, "prune", model, "--tokenizer", tok, "--calib", calib, "--ratio", "0.25", "--out", pruned])
            n_layers = json.load(open(os.path.join(pruned, "config.json")))["num_hidden_layers"]

            def ppl(extra):
                return run_json([q, "eval-ppl", pruned, "--tokenizer", tok, "--file", evalf, "--seq-len", "256",
                                 "--max-windows", str(a.windows), "--threads", "1", "--json"] + extra)

            dense = ppl([])["ppl"]
            unpruned = run_json([q, "eval-ppl", model, "--tokenizer", tok, "--file", evalf, "--seq-len", "256",
                                 "--max-windows", str(a.windows), "--json"])["ppl"]
            res = results[name] = {"unpruned_fp32_ppl": unpruned, "pruned_fp32_ppl": dense, "sets": {}}
            print(f"\n## {name} (allocation epsilon {a.epsilon}): fp32 perplexity {unpruned:.3f}, pruned 25% {dense:.3f} (TinyStories second half, "
                  f"{a.windows} x 256 tokens)")
            for cset in a.sets.split(";"):
                cands = cset.split(",")
                lowest = cands[0]
                scores = os.path.join(tmp, f"{name}-{lowest}-scores.json")
                imp = run_json([q, "importance", pruned, "--tokenizer", tok, "--calib", calib, "--samples", "32",
                                "--seq-len", "128", "--kl-format", lowest, "--out", scores, "--json"])
                # The oracle: every per-layer map of this candidate set.
                maps = list(itertools.product(cands, repeat=n_layers))

                def evaluate(formats):
                    path = os.path.join(tmp, f"{name}-" + "-".join(formats) + ".json")
                    json.dump(map_json(formats), open(path, "w"))
                    j = ppl(["--map", path])
                    return formats, j["ppl"], j["memory"]["linear_bits_per_weight"], j["memory"]["total_bytes"]

                if a.oracle_from:
                    old = json.load(open(a.oracle_from))[name]["sets"][cset]["oracle"]
                    oracle = {tuple(e["formats"]): (e["ppl"], e["bpw"], e["total_bytes"]) for e in old}
                else:
                    with concurrent.futures.ThreadPoolExecutor(a.jobs) as ex:
                        oracle = {f: (p, bpw, tb) for f, p, bpw, tb in ex.map(evaluate, maps)}
                sres = res["sets"][cset] = {"importance": imp, "budgets": {}}
                print(f"\n### candidates {{{cset}}}; quant-kl scored with {lowest}\n")
                print("| layer | " + " | ".join(f"{m} (norm)" for m in METRICS) + " |")
                print("|---|" + "---|" * len(METRICS))
                for l in range(n_layers):
                    cells = []
                    for m in METRICS:
                        s = imp["metrics"][m]
                        cells.append(f"{s['layers'][l]:.4g} ({s['normalized'][l]:.2f})")
                    print(f"| {l} | " + " | ".join(cells) + " |")
                # Measured sensitivity: perplexity when only layer l takes the lowest candidate, the rest the highest.
                top = cands[-1]
                sens = [oracle[tuple(lowest if i == l else top for i in range(n_layers))][0] for l in range(n_layers)]
                sres["measured_sensitivity"] = sens
                print(f"\nmeasured sensitivity, ppl with only layer l in {lowest} (others {top}): "
                      + ", ".join(f"{l}: {v:.3f}" for l, v in enumerate(sens)))
                print("\nSpearman rank correlation with the measured sensitivity: " + ", ".join(
                    f"{m} {spearman(imp['metrics'][m]['layers'], sens):+.2f}" for m in METRICS)
                      + "; between metrics: " + ", ".join(
                    f"{x}/{y} {spearman(imp['metrics'][x]['layers'], imp['metrics'][y]['layers']):+.2f}"
                    for x, y in itertools.combinations(METRICS, 2)))
                print("\nuniform maps: " + ", ".join(
                    f"{c} {oracle[(c,) * n_layers][1]:.2f} bpw ppl {oracle[(c,) * n_layers][0]:.3f}" for c in cands))
                print("\n| budget (bpw) | feasible maps | best feasible ppl | random (mean ± sd, n) | "
                      + " | ".join(f"{m} greedy / prob." for m in METRICS) + " |")
                print("|---|---|---|---|" + "---|" * len(METRICS))
                for budget in SETS.get(cset, [5.5, 7.0, 10.0]):
                    feas = sorted(p for f, (p, bpw, tb) in oracle.items() if bpw <= budget + 1e-9)

                    def rank(p):
                        return sum(1 for x in feas if x < p - 1e-12) + 1

                    def alloc(method, metric="mi", seed=0):
                        # random: 256 draws, so that some fit even a tight budget
                        j = run_json([q, "allocate", pruned, "--scores", scores, "--metric", metric, "--budget",
                                      f"{budget}bpw", "--method", method, "--candidates", cset, "--seed", str(seed),
                                      "--samples", "256" if method == "random" else "16",
                                      "--epsilon", str(a.epsilon),
                                      "--out", os.path.join(tmp, "alloc.json"), "--json"])
                        f = tuple(j["best"]["formats"])
                        return f, oracle[f][0], oracle[f][1]

                    rnd = [alloc("random", seed=s)[1] for s in range(a.random_seeds)]
                    row, bres = [], {}
                    for m in METRICS:
                        g, p = alloc("greedy", m), alloc("probabilistic", m)
                        bres[m] = {"greedy": {"formats": g[0], "ppl": g[1], "bpw": g[2], "rank": rank(g[1])},
                                   "probabilistic": {"formats": p[0], "ppl": p[1], "bpw": p[2], "rank": rank(p[1])}}
                        row.append(f"{g[1]:.3f} (#{rank(g[1])}) / {p[1]:.3f} (#{rank(p[1])})")
                    sres["budgets"][str(budget)] = {"feasible": len(feas), "best": feas[0] if feas else None,
                                                    "random": rnd, "methods": bres}
                    print(f"| {budget} | {len(feas)} | {feas[0]:.3f} | {statistics.mean(rnd):.3f} ± "
                          f"{statistics.stdev(rnd):.3f} ({len(rnd)}) | " + " | ".join(row) + " |")
                sres["oracle"] = [{"formats": f, "ppl": v[0], "bpw": v[1], "total_bytes": v[2]}
                                  for f, v in oracle.items()]
    if a.json_out:
        json.dump(results, open(a.json_out, "w"), indent=1)


if __name__ == "__main__":
    main()
