#!/usr/bin/env python3
"""The search strategies head to head at equal token budgets.

Models: stories260K pruned 25% (qpruner prune, default options) and llama2xs-64d (5 layers each), each scored
once with quant-kl (qpruner importance). Spaces: module granularity (35 units: 5 layers x 7 linears) over
nf4/int8/bf16 and over int3/int4/int8, two budgets each; layer granularity (5 units) over nf4/int8/bf16, where
every feasible map is also evaluated (a random search run to exhaustion) so each strategy's best map gets its
rank among all of them (1 = the optimum). For every (model, space, budget) and seed, each strategy runs
`qpruner search --strategy S --token-budget T` (T = --evals full evaluations of the validation slice, the first
--val-windows x --val-seq-len tokens of TinyStories), one thread each, --jobs at a time. The lagrangian's error
table is measured on a quarter of the windows and charged to its budget (lagrangian and ap-ratio draw nothing at
random: they run once, and their sd is 0); evopress uses its default stages
(1/8, 1/2, 1 of the windows); bayes runs as the default (its initial design led by the knapsack's answers from
the same error table, also charged), without them ("bayes-plain"), and multi-fidelity with fidelities 1/4, 1
("bayes-mf", no knapsack seeds).

Per (model, space, budget), all runs share one hypervolume reference (total bytes and perplexity, both
minimised): memory = the largest total bytes of any full-fidelity trial of any run, objective = the largest
perplexity of any of them. Reported per strategy, mean ± sd over seeds: the hypervolume at half and at the whole
token budget, the best perplexity within the budget, and (layer granularity) the rank of that best map. Only
full-fidelity trials count. Uses the CLI and sqlite3 on the stores; prints Markdown; --json-out saves all.

    bench/strategies.py --qpruner build/app/qpruner [--seeds 0,1,2,3,4] [--jobs 2] [--evals 40]
"""
import argparse
import concurrent.futures
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from search_evidence import hypervolume, mean_sd  # noqa: E402  (same definitions as the search evidence)

MODELS = {
    "stories260K-p25": ("models/stories260K/stories260K.bin", "models/stories260K/tok512.model", True),
    "llama2xs-64d": ("models/llama2xs-64d/model.bin", "models/llama2xs-64d/tok512.bin", False),
}
SPACES = [  # (name, granularity, candidates, budgets)
    ("module nf4/int8/bf16", "module", "nf4,int8,bf16", ["5bpw", "6.5bpw"]),
    ("module int3/int4/int8", "module", "int3,int4,int8", ["4bpw", "5.5bpw"]),
    ("layer nf4/int8/bf16", "layer", "nf4,int8,bf16", ["7bpw", "10bpw"]),
]
STRATEGIES = {
    "bayes": [],  # the default: knapsack seeds from an error table on 1/4 of the windows, then bayes
    "bayes-plain": ["--strategy", "bayes", "--no-initial-knapsack"],
    "bayes-mf": ["--strategy", "bayes", "--fidelities", "0.25,1", "--no-initial-knapsack"],
    "random": ["--strategy", "random"],
    "evopress": ["--strategy", "evopress"],
    "nsga2": ["--strategy", "nsga2"],
    "lagrangian": ["--strategy", "lagrangian"],
    "ap-ratio": ["--strategy", "ap-ratio"],
}


DETERMINISTIC = {"lagrangian", "ap-ratio"}


def run(cmd, env):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"failed ({out.returncode}): {' '.join(cmd)}\n{out.stderr}")
    return out.stdout


def has_run(db, name):
    if not os.path.exists(db):
        return False
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    found = con.execute("SELECT 1 FROM runs WHERE name = ?", (name,)).fetchone() is not None
    con.close()
    return found


def trials_of(db, run_id):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = con.execute("SELECT number, memory_bytes, objective, fidelity, tokens, encoding FROM trials "
                       "WHERE run_id = ? AND state = 'complete' ORDER BY number", (run_id,)).fetchall()
    con.close()
    return [dict(zip(("number", "memory", "objective", "fidelity", "tokens", "encoding"), r)) for r in rows]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qpruner", default="build/app/qpruner")
    ap.add_argument("--data", default=os.environ.get("QPRUNER_SHARED_DATA", "../shared/data"))
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--evals", type=int, default=40, help="token budget in full evaluations (module granularity)")
    ap.add_argument("--layer-evals", type=int, default=15, help="token budget in full evaluations (layer granularity)")
    ap.add_argument("--val-windows", type=int, default=8)
    ap.add_argument("--val-seq-len", type=int, default=128)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--work-dir", help="keep models, scores and stores here; runs already in a store are not "
                    "run again, so strategies can be added to an earlier study")
    ap.add_argument("--json-out")
    a = ap.parse_args()
    data = os.path.abspath(a.data)
    env = dict(os.environ, QPRUNER_SHARED_DATA=data)
    seeds = [int(s) for s in a.seeds.split(",")]
    strategies = a.strategies.split(",")
    tmp_ctx = tempfile.TemporaryDirectory() if not a.work_dir else None
    work = os.path.abspath(a.work_dir or tmp_ctx.name)
    os.makedirs(work, exist_ok=True)
    q = os.path.abspath(a.qpruner)
    full_tokens = a.val_windows * (a.val_seq_len - 1)
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2; nproc; "
                          "grep -m1 -o -w -e avx512f -e avx2 /proc/cpuinfo | sort -u | tr '\\n' ' '"],
                         capture_output=True, text=True).stdout.split("\n")
    results = {"config": vars(a), "cpu": [c.strip() for c in cpu if c.strip()], "rows": []}
    t_start = time.time()

    jobs = []  # (key, db, name, cmd)
    stores = {}  # db -> (model, space, budget)
    prepared = {}
    for mname in a.models.split(","):
        rel, tokrel, prune = MODELS[mname]
        model, tok = os.path.join(data, rel), os.path.join(data, tokrel)
        if prune:
            out = os.path.join(work, mname)
            if not os.path.exists(out):
                run([q, "prune", model, "--tokenizer", tok, "--ratio", "0.25", "--out", out, "--threads", "1"], env)
            model = out
        scores = os.path.join(work, mname + "-scores.json")
        if not os.path.exists(scores):
            run([q, "importance", model, "--tokenizer", tok, "--metrics", "quant-kl", "--out", scores], env)
        prepared[mname] = (model, tok, scores)
        for sname, gran, cands, budgets in SPACES:
            for budget in budgets:
                key = (mname, sname, budget)
                db = os.path.join(work, f"{mname}-{sname.replace(' ', '_').replace('/', '-')}-{budget}.db")
                stores[db] = key
                evals = a.layer_evals if gran == "layer" else a.evals
                base = [q, "search", model, "--tokenizer", tok, "--scores", scores, "--db", db, "--budget", budget,
                        "--candidates", cands, "--granularity", gran, "--val-windows", str(a.val_windows),
                        "--val-seq-len", str(a.val_seq_len), "--threads", "1", "--trials", "100000", "--json"]
                for strat in strategies:
                    # lagrangian and ap-ratio use no randomness: one run stands for every seed.
                    for seed in (seeds[:1] if strat in DETERMINISTIC else seeds):
                        if has_run(db, f"{strat}/{seed}"):
                            continue
                        jobs.append((key, db, f"{strat}/{seed}",
                                     base + STRATEGIES[strat] + ["--token-budget", str(evals * full_tokens),
                                                                 "--seed", str(seed), "--name", f"{strat}/{seed}"]))
                if gran == "layer" and not has_run(db, "oracle"):  # every feasible map: random search to exhaustion
                    jobs.append((key, db, "oracle", base + ["--strategy", "random", "--name", "oracle"]))

    # One store per (model, space, budget): its runs go one after another (SQLite serialises writers anyway), the
    # stores in parallel.
    by_db = {db: [] for db in stores}
    for j in jobs:
        by_db[j[1]].append(j)

    def run_db(item):
        db, items = item
        for _, _, _, cmd in items:
            run(cmd, env)
        return db

    done = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as pool:
        for db in pool.map(run_db, by_db.items()):
            done += 1
            print(f"[{time.time() - t_start:6.0f} s] {done}/{len(by_db)} stores done: {os.path.basename(db)}",
                  file=sys.stderr, flush=True)

    # Analysis.
    table = []
    for db, key in stores.items():
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        runs = {name: rid for rid, name in con.execute("SELECT id, name FROM runs")}
        budget_bytes = {}
        for rid, res in con.execute("SELECT run_id, result_json FROM stages WHERE name = 'search'"):
            budget_bytes[rid] = json.loads(res)["budget_bytes"] if res else None
        con.close()
        per_run = {name: [t for t in trials_of(db, rid) if t["fidelity"] >= 1] for name, rid in runs.items()}
        allpts = [(t["memory"], t["objective"]) for ts in per_run.values() for t in ts]
        ref = (max(p[0] for p in allpts), max(p[1] for p in allpts))
        oracle = sorted(t["objective"] for t in per_run.get("oracle", []))
        for strat in strategies:
            hv_half, hv_full, best, rank, ntrials = [], [], [], [], []
            for seed in (seeds[:1] if strat in DETERMINISTIC else seeds):
                name = f"{strat}/{seed}"
                ts = per_run.get(name, [])
                evals = a.layer_evals if key[1].startswith("layer") else a.evals
                # Trials in claim order with the tokens spent up to each (all fidelities count towards the cost).
                allts = trials_of(db, runs[name])
                spent, upto_half = 0, []
                for t in allts:
                    spent += t["tokens"]
                    if spent <= evals * full_tokens / 2 and t["fidelity"] >= 1:
                        upto_half.append((t["memory"], t["objective"]))
                hv_half.append(hypervolume(upto_half, ref))
                hv_full.append(hypervolume([(t["memory"], t["objective"]) for t in ts], ref))
                b = min((t["objective"] for t in ts), default=float("nan"))
                best.append(b)
                ntrials.append(len(allts))
                if oracle and ts:
                    rank.append(1 + sum(1 for o in oracle if o < b))
            row = {"model": key[0], "space": key[1], "budget": key[2], "strategy": strat,
                   "hv_half": hv_half, "hv_full": hv_full, "best_ppl": best, "rank": rank, "trials": ntrials,
                   "feasible_maps": len(oracle) or None}
            table.append(row)
    results["rows"] = table
    results["seconds"] = time.time() - t_start

    print(f"CPU: {', '.join(results['cpu'])}; {len(seeds)} seeds; token budget {a.evals} (module) / "
          f"{a.layer_evals} (layer) full evaluations of {a.val_windows} x {a.val_seq_len} tokens\n")
    print("| model | space | budget | strategy | HV at 1/2 budget | HV at budget | best ppl | rank (layer) | trials |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in table:
        print(f"| {r['model']} | {r['space']} | {r['budget']} | {r['strategy']} | {mean_sd(r['hv_half'])} | "
              f"{mean_sd(r['hv_full'])} | {mean_sd(r['best_ppl'], '{:.4f}')} | "
              f"{mean_sd(r['rank'], '{:.1f}') + ' of ' + str(r['feasible_maps']) if r['rank'] else '-'} | "
              f"{statistics.mean(r['trials']):.0f} |")
    # Which strategy is best (or tied: within one sd of the best mean) per row, by best ppl and final HV.
    print("\nBest or tied-best (within the best mean's sd) per (model, space, budget):")
    groups = {}
    for r in table:
        groups.setdefault((r["model"], r["space"], r["budget"]), []).append(r)
    for k, rows in groups.items():
        def winners(field, lower):
            ms = {r["strategy"]: (statistics.mean(r[field]), statistics.pstdev(r[field])) for r in rows}
            best_s = (min if lower else max)(ms, key=lambda s: ms[s][0])
            m, sd = ms[best_s]
            return [s for s in ms if (ms[s][0] <= m + sd if lower else ms[s][0] >= m - sd)]
        print(f"- {' / '.join(k)}: best ppl {', '.join(winners('best_ppl', True))}; "
              f"HV {', '.join(winners('hv_full', False))}")
    print(f"\n{results['seconds']:.0f} s in all")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
