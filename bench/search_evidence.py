#!/usr/bin/env python3
"""Does the Bayesian precision-map search beat uniform maps and random search at equal trials?

stories260K is pruned 25% once (qpruner prune, default options) and scored once with quant-kl on the pruned
model. At each budget (average bits per decoder-linear weight) and for each seed, a bayes search and a random
search of --trials trials run at --granularity group (10 units x {nf4,int8,bf16}), one thread each, at most
--jobs at a time, every run in one SQLite store per budget.

    bench/search_evidence.py --qpruner build/app/qpruner [--budgets 5.5bpw,7bpw] [--seeds 0,1,2] [--jobs 2]

Per budget, all runs share one hypervolume reference (2-D, total bytes and perplexity, both minimised): memory =
the largest total bytes of any complete trial of any run at that budget, objective = 1.1 x the perplexity of
the uniform nf4 map. Hypervolumes are recomputed here from the stored trials (after 10, 20, 30, 40 trials in
trial-number order) and checked against `qpruner pareto --ref-memory --ref-objective`. Where a budget admits at most --oracle-max maps, every one of
them is evaluated too (eval-ppl --map on the same slice), so each search's best map gets its rank among all
feasible maps. A random search stops early ("exhausted") when its sampler finds no new feasible map. Trial timings (quantize,
evaluate, surrogate) come from the store's trials table. The searches validate on the first --val-windows x 256
tokens of TinyStories (the search's default slice); the pruned model's dense perplexity is measured on the same
slice. Uses only the CLI (and sqlite3 to read the store). Prints Markdown tables; --json-out FILE saves
everything.
"""
import argparse
import concurrent.futures
import itertools
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

MODEL = "models/stories260K/stories260K.bin"
TOKENIZER = "models/stories260K/tok512.model"
VAL_FILE = "text/tinystories/tinystories_valid_subset.txt"  # the search's --val tinystories
CANDIDATES = ["nf4", "int8", "bf16"]  # the search's default --candidates, encoding '0' + index
GROUPS = [("q", "k", "v", "o"), ("gate", "up", "down")]  # --granularity group: unit 2l attention, 2l+1 MLP
STRATEGIES = ["bayes", "random"]


def run(cmd, env):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"failed ({out.returncode}): {' '.join(cmd)}\n{out.stderr}")
    return out.stdout


def run_json(cmd, env):
    return json.loads(run(cmd, env))


def pareto_front(points):
    """Indices of the non-dominated (memory, objective) points, by ascending memory; duplicates kept once."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1], i))
    front, best = [], float("inf")
    for i in order:
        if points[i][1] < best:
            front.append(i)
            best = points[i][1]
    return front


def hypervolume(points, ref):
    """Area dominated by the points below `ref` (both coordinates minimised)."""
    pts = sorted((m, o) for m, o in points if m < ref[0] and o < ref[1])
    hv, best = 0.0, ref[1]
    for m, o in pts:
        if o < best:
            hv += (ref[0] - m) * (best - o)
            best = o
    return hv


def dominates(a, b):
    return a[0] <= b[0] and a[1] <= b[1] and (a[0] < b[0] or a[1] < b[1])


def mean_sd(values, fmt="{:.4g}"):
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return (fmt + " ± " + fmt).format(statistics.mean(values), sd)


def stats(values):
    return {"n": len(values), "median": statistics.median(values) if values else None,
            "mean": statistics.mean(values) if values else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qpruner", default="build/app/qpruner")
    ap.add_argument("--data", default=os.environ.get("QPRUNER_SHARED_DATA", "../shared/data"))
    ap.add_argument("--budgets", default="5.5bpw,7bpw", help="comma-separated, in bits per weight")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--checkpoints", default="10,20,30,40", help="trial counts at which hypervolumes are reported")
    ap.add_argument("--val-windows", type=int, default=16, help="the search's --val-windows (its default)")
    ap.add_argument("--jobs", type=int, default=2, help="searches run concurrently (one thread each)")
    ap.add_argument("--oracle-max", type=int, default=200,
                    help="evaluate every feasible map of a budget with at most this many (0: never)")
    ap.add_argument("--work-dir", help="keep the pruned model, scores and stores here (default: a temp dir)")
    ap.add_argument("--json-out")
    a = ap.parse_args()
    q = a.qpruner
    data = os.path.abspath(a.data)
    d = lambda rel: os.path.join(data, rel)
    env = dict(os.environ, QPRUNER_SHARED_DATA=data)
    budgets = a.budgets.split(",")
    seeds = [int(s) for s in a.seeds.split(",")]
    checkpoints = [int(c) for c in a.checkpoints.split(",")]
    for b in budgets:
        if not b.endswith("bpw"):
            sys.exit(f"budget {b}: give budgets in bits per weight (e.g. 5.5bpw)")
    tok = d(TOKENIZER)
    results = {"config": vars(a), "budgets": {}}

    tmp_ctx = tempfile.TemporaryDirectory() if not a.work_dir else None
    tmp = a.work_dir or tmp_ctx.name
    os.makedirs(tmp, exist_ok=True)
    try:
        # --- the model, its scores, the dense and uniform references ---
        pruned = os.path.join(tmp, "stories260K-p25")
        scores = os.path.join(tmp, "scores.json")
        t0 = time.time()
        run([q, "prune", d(MODEL), "--tokenizer", tok, "--ratio", "0.25", "--out", pruned], env)
        run([q, "importance", pruned, "--tokenizer", tok, "--metrics", "quant-kl", "--out", scores], env)
        setup_s = time.time() - t0

        def eval_ppl(extra):
            return run_json([q, "eval-ppl", pruned, "--tokenizer", tok, "--file", d(VAL_FILE), "--seq-len", "256",
                             "--max-windows", str(a.val_windows), "--threads", "1", "--json"] + extra, env)

        dense = eval_ppl([])["ppl"]
        uniform = {}
        for f in CANDIDATES:
            j = eval_ppl(["--format", f])
            uniform[f] = {"ppl": j["ppl"], "total_bytes": j["memory"]["total_bytes"],
                          "linear_bytes": j["memory"]["linear_bytes"],
                          "bpw": j["memory"]["linear_bits_per_weight"]}
        results.update(dense_ppl=dense, uniform=uniform, setup_seconds=setup_s)

        # --- dry computation: linear bytes of every group-granularity map ---
        unit_bytes = []  # unit_bytes[u][c]
        linear_params = None
        per_format = {}
        for f in CANDIDATES:
            m = run_json([q, "memory", pruned, "--format", f, "--json"], env)["memory"]
            linear_params = m["linear_parameters"]
            per_format[f] = m["layers"]
        n_layers = len(per_format[CANDIDATES[0]])
        for layer in range(n_layers):
            for group in GROUPS:
                unit_bytes.append([sum(per_format[f][layer]["module_bytes"][mod] for mod in group)
                                   for f in CANDIDATES])
        n_units = len(unit_bytes)
        all_bytes = [sum(unit_bytes[u][c] for u, c in enumerate(enc))
                     for enc in itertools.product(range(len(CANDIDATES)), repeat=n_units)]

        def enc_bytes(enc):
            return sum(unit_bytes[u][int(ch)] for u, ch in enumerate(enc))

        print(f"\n## stories260K pruned 25%: {n_units} search units x {{{','.join(CANDIDATES)}}} = "
              f"{len(all_bytes)} maps; validation: TinyStories first {a.val_windows} x 256 tokens\n")
        print(f"dense (fp32) pruned model ppl {dense:.4f}\n")
        print("| uniform map | linear bpw | total bytes | ppl |")
        print("|---|---|---|---|")
        for f, u in uniform.items():
            print(f"| {f} | {u['bpw']:.3f} | {u['total_bytes']} | {u['ppl']:.4f} |")
        print("\n| budget | budget bytes (linear) | feasible maps (dry) | uniform maps within |")
        print("|---|---|---|---|")
        budget_bytes = {}
        for b in budgets:
            bb = float(b[:-3]) * linear_params / 8
            budget_bytes[b] = bb
            feasible = sum(1 for x in all_bytes if x <= bb)
            inside = [f for f in CANDIDATES if uniform[f]["linear_bytes"] <= bb]
            results["budgets"][b] = {"budget_bytes_dry": bb, "feasible_maps": feasible, "uniform_within": inside}
            print(f"| {b} | {bb:.0f} | {feasible} | {', '.join(inside) or '-'} |")
            if feasible < 10 * a.trials:
                print(f"WARNING: only {feasible} feasible maps at {b} for {a.trials} trials", file=sys.stderr)

        # --- the searches ---
        def search(task):
            b, strategy, seed = task
            db = os.path.join(tmp, f"search-{b}.db")
            t = time.time()
            j = run_json([q, "search", pruned, "--tokenizer", tok, "--db", db, "--scores", scores, "--budget", b,
                          "--trials", str(a.trials), "--granularity", "group", "--strategy", strategy,
                          "--seed", str(seed), "--threads", "1", "--val-windows", str(a.val_windows),
                          "--experiment", f"evidence-{b}", "--name", f"{strategy}-seed{seed}", "--json"], env)
            return task, db, j["run"], j["stages"]["search"], time.time() - t

        tasks = [(b, s, seed) for b in budgets for seed in seeds for s in STRATEGIES]
        t0 = time.time()
        with concurrent.futures.ThreadPoolExecutor(a.jobs) as ex:
            done = list(ex.map(search, tasks))
        results["search_wall_seconds"] = time.time() - t0

        # --- the oracle: every feasible map of a small budget, evaluated as the search would ---
        def map_of(enc):
            layers = {}
            for u, ch in enumerate(enc):
                for mod in GROUPS[u % 2]:
                    layers.setdefault(str(u // 2), {})[mod] = CANDIDATES[int(ch)]
            return {"version": 1, "default": "bf16", "layers": layers}

        def oracle_eval(enc):
            path = os.path.join(tmp, f"map-{enc}.json")
            json.dump(map_of(enc), open(path, "w"))
            return enc, eval_ppl(["--map", path])["ppl"]

        encodings = ["".join(map(str, e)) for e in itertools.product(range(len(CANDIDATES)), repeat=n_units)]
        oracle = {}
        for b in budgets:
            feas = [e for e, x in zip(encodings, all_bytes) if x <= budget_bytes[b]]
            if 0 < len(feas) <= a.oracle_max:
                todo = [e for e in feas if e not in oracle]
                with concurrent.futures.ThreadPoolExecutor(a.jobs) as ex:
                    oracle.update(ex.map(oracle_eval, todo))
                ranked = sorted(oracle[e] for e in feas)
                results["budgets"][b]["oracle"] = {"maps": len(feas), "best_ppl": ranked[0],
                                                   "best_map": min(feas, key=lambda e: oracle[e]),
                                                   "ppl_sorted": ranked}

        cols = ("number", "source", "state", "objective", "memory_bytes", "budgeted_bytes", "seconds_quantize",
                "seconds_evaluate", "seconds_surrogate", "encoding")
        runs = {}
        for (b, strategy, seed), db, run_id, stage, wall in done:
            con = sqlite3.connect(db)
            rows = [dict(zip(cols, r)) for r in con.execute(
                f"select {', '.join(cols)} from trials where run_id=? order by number", (run_id,))]
            con.close()
            runs[(b, strategy, seed)] = {"db": db, "run": run_id, "stage": stage, "wall_seconds": wall,
                                         "trials": rows}

        timing_rows = {"bayes": [], "bayes acquisition": [], "random": []}
        checks = {"bytes_mismatches": 0, "infeasible_trials": 0, "pareto_cli_max_rel_diff": 0.0,
                  "oracle_max_abs_diff": 0.0}
        for b in budgets:
            bres = results["budgets"][b]
            brun = {k: v for k, v in runs.items() if k[0] == b}
            complete = [t for r in brun.values() for t in r["trials"] if t["state"] == "complete"]
            stage_bb = {r["stage"]["budget_bytes"] for r in brun.values()}
            for t in complete:
                if enc_bytes(t["encoding"]) != t["budgeted_bytes"]:
                    checks["bytes_mismatches"] += 1
                if t["budgeted_bytes"] > budget_bytes[b]:
                    checks["infeasible_trials"] += 1
            nf4 = {t["objective"] for (bb, s, _), r in brun.items() if s == "bayes"
                   for t in r["trials"] if t["source"] == "initial:uniform:nf4" and t["state"] == "complete"}
            if len(nf4) > 1 and max(nf4) - min(nf4) > 1e-9 * max(nf4):
                print(f"WARNING: uniform nf4 perplexities differ between runs at {b}: {sorted(nf4)}", file=sys.stderr)
            nf4_ppl = min(nf4) if nf4 else uniform["nf4"]["ppl"]
            ref = (float(max(t["memory_bytes"] for t in complete)), 1.1 * nf4_ppl)
            bres.update(budget_bytes_search=sorted(stage_bb), reference={"memory": ref[0], "objective": ref[1]},
                        uniform_nf4_ppl_in_search=nf4_ppl, runs={})
            uni_in = [(uniform[f]["total_bytes"], uniform[f]["ppl"]) for f in bres["uniform_within"]]
            uni_all = [(uniform[f]["total_bytes"], uniform[f]["ppl"]) for f in CANDIDATES]
            per = {s: {"hv": {c: [] for c in checkpoints}, "best": [], "front": [], "dom_in": [], "dom_all": [],
                       "distinct": [], "wall": [], "complete": [],
                       "exhausted": [], "rank": []} for s in STRATEGIES}
            for seed in seeds:
                for s in STRATEGIES:
                    r = brun[(b, s, seed)]
                    ts = [t for t in r["trials"] if t["state"] == "complete"]
                    pts = [(float(t["memory_bytes"]), t["objective"]) for t in ts]
                    hv_at = {c: hypervolume([p for p, t in zip(pts, ts) if t["number"] < c], ref)
                             for c in checkpoints}
                    final = hypervolume(pts, ref)
                    cli = run_json([q, "pareto", "--db", r["db"], "--run", str(r["run"]), "--json", "--all",
                                    "--ref-memory", repr(ref[0]), "--ref-objective", repr(ref[1])], env)
                    rel = abs(cli["hypervolume"] - final) / max(abs(final), 1e-300)
                    checks["pareto_cli_max_rel_diff"] = max(checks["pareto_cli_max_rel_diff"], rel)
                    feas = [p for p, t in zip(pts, ts) if t["budgeted_bytes"] <= budget_bytes[b]]
                    best = min(p[1] for p in feas) if feas else None
                    front = [pts[i] for i in pareto_front(pts)]
                    dom_in = sum(1 for p in front if any(dominates(p, u) for u in uni_in))
                    dom_all = sum(1 for p in front if any(dominates(p, u) for u in uni_all))
                    distinct = len({t["encoding"] for t in ts})
                    orc = bres.get("oracle")
                    rank = (1 + sum(1 for x in orc["ppl_sorted"] if x < best - 1e-12)) if orc and best else None
                    for t in ts:  # the oracle re-evaluates the same maps: the objectives must agree
                        if t["encoding"] in oracle:
                            checks["oracle_max_abs_diff"] = max(checks["oracle_max_abs_diff"],
                                                                abs(oracle[t["encoding"]] - t["objective"]))
                    g = per[s]
                    for c in checkpoints:
                        g["hv"][c].append(hv_at[c])
                    g["best"].append(best)
                    g["front"].append(len(front))
                    g["dom_in"].append(dom_in)
                    g["dom_all"].append(dom_all)
                    g["distinct"].append(distinct)
                    g["wall"].append(r["wall_seconds"])
                    g["complete"].append(len(ts))
                    g["exhausted"].append(bool(r["stage"].get("exhausted")))
                    g["rank"].append(rank)
                    bres["runs"][f"{s}-seed{seed}"] = {
                        "run": r["run"], "db": r["db"], "hypervolume": final, "hypervolume_at": hv_at,
                        "hypervolume_cli": cli["hypervolume"], "best_ppl": best, "front": front,
                        "front_dominating_uniform_within_budget": dom_in, "front_dominating_any_uniform": dom_all,
                        "complete": len(ts), "distinct": distinct, "oracle_rank": rank,
                        "exhausted": bool(r["stage"].get("exhausted")), "wall_seconds": r["wall_seconds"],
                        "trials": r["trials"]}
                    for t in r["trials"]:
                        if t["state"] != "complete":
                            continue
                        if s == "random":
                            timing_rows["random"].append(t)
                        else:
                            timing_rows["bayes"].append(t)
                            if t["source"] == "acquisition":
                                timing_rows["bayes acquisition"].append(t)
            bres["summary"] = per

            print(f"\n### budget {b}: reference ({ref[0]:.0f} B, {ref[1]:.4f}) = (largest total bytes of any trial, "
                  f"1.1 x uniform nf4 ppl {nf4_ppl:.4f}); uniform maps within: "
                  + (", ".join(f"{f} ppl {uniform[f]['ppl']:.4f} at {uniform[f]['total_bytes']} B"
                               for f in bres["uniform_within"]) or "none")
                  + (f"; oracle: best of all {bres['oracle']['maps']} feasible maps ppl "
                     f"{bres['oracle']['best_ppl']:.4f}" if "oracle" in bres else "") + "\n")
            print("| strategy | " + " | ".join(f"HV @{c}" for c in checkpoints)
                  + " | best ppl within budget | front size | front pts dominating a uniform map (within budget / any)"
                  " | complete trials (runs exhausted) | distinct maps | wall s/run |")
            print("|---|" + "---|" * len(checkpoints) + "---|---|---|---|---|---|")
            for s in STRATEGIES:
                g = per[s]
                print(f"| {s} | " + " | ".join(mean_sd(g["hv"][c], "{:.1f}") for c in checkpoints)
                      + f" | {mean_sd([x for x in g['best'] if x is not None], '{:.4f}')}"
                      f" | {mean_sd(g['front'], '{:.1f}')} | {mean_sd(g['dom_in'], '{:.1f}')} / "
                      f"{mean_sd(g['dom_all'], '{:.1f}')} | {mean_sd(g['complete'], '{:.1f}')} ({sum(g['exhausted'])})"
                      f" | {mean_sd(g['distinct'], '{:.1f}')}"
                      f" | {mean_sd(g['wall'], '{:.1f}')} |")
            rk = lambda v: "" if v is None else f" (#{v})"
            print("\n| seed | bayes HV | random HV | bayes best ppl (oracle rank) | random best ppl (oracle rank) |")
            print("|---|---|---|---|---|")
            for i, seed in enumerate(seeds):
                print(f"| {seed} | {per['bayes']['hv'][checkpoints[-1]][i]:.1f} | "
                      f"{per['random']['hv'][checkpoints[-1]][i]:.1f} | {per['bayes']['best'][i]:.4f}"
                      f"{rk(per['bayes']['rank'][i])} | {per['random']['best'][i]:.4f}{rk(per['random']['rank'][i])} |")

        # --- time per trial ---
        timing = {}
        print("\n### time per trial (ms; median / mean over complete trials, all budgets and seeds)\n")
        print("| trials | n | quantize | evaluate | surrogate | surrogate share: median per trial | "
              "share of totals |")
        print("|---|---|---|---|---|---|---|")
        for name, ts in timing_rows.items():
            qz = [t["seconds_quantize"] for t in ts]
            ev = [t["seconds_evaluate"] for t in ts]
            su = [t["seconds_surrogate"] for t in ts]
            shares = [s / (x + y + s) for x, y, s in zip(qz, ev, su) if x + y + s > 0]
            tot = sum(qz) + sum(ev) + sum(su)
            timing[name] = {"quantize": stats(qz), "evaluate": stats(ev), "surrogate": stats(su),
                            "share_median": statistics.median(shares) if shares else None,
                            "share_of_totals": sum(su) / tot if tot else None}
            if not ts:
                continue
            ms = lambda v: f"{1e3 * statistics.median(v):.2f} / {1e3 * statistics.mean(v):.2f}"
            print(f"| {name} | {len(ts)} | {ms(qz)} | {ms(ev)} | {ms(su)} | "
                  f"{100 * timing[name]['share_median']:.2f}% | {100 * timing[name]['share_of_totals']:.2f}% |")
        results["timing"] = timing
        results["checks"] = checks
        print(f"\nchecks: dry bytes vs stored budgeted_bytes mismatches {checks['bytes_mismatches']}, trials over "
              f"budget {checks['infeasible_trials']}, max relative |HV - qpruner pareto HV| "
              f"{checks['pareto_cli_max_rel_diff']:.2e} over {len(runs)} runs, max |oracle eval-ppl - stored objective| "
              f"{checks['oracle_max_abs_diff']:.2e}; searches took "
              f"{results['search_wall_seconds']:.0f} s wall ({a.jobs} at a time)")
        if checks["pareto_cli_max_rel_diff"] > 1e-9:
            print("WARNING: the hypervolume disagrees with qpruner pareto", file=sys.stderr)
    finally:
        if a.json_out:
            json.dump(results, open(a.json_out, "w"), indent=1, default=str)
        if tmp_ctx:
            tmp_ctx.cleanup()


if __name__ == "__main__":
    main()
