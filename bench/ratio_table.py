#!/usr/bin/env python3
"""Prints the benchmark tables from the JSON lines the bench executables write (stdin or files)."""
import json
import sys
from collections import defaultdict


def rows(stream):
    for line in stream:
        line = line.strip()
        if line.startswith("{"):
            yield json.loads(line)


def main():
    streams = [open(f) for f in sys.argv[1:]] or [sys.stdin]
    data = [r for s in streams for r in rows(s)]
    ppl = [r for r in data if r.get("bench") == "eval_ppl"]
    if not ppl:
        print("no eval_ppl rows")
        return
    by = defaultdict(dict)
    models, threads = [], sorted({r["threads"] for r in ppl})
    for r in ppl:
        by[(r["model"], r["dtype"])][r["threads"]] = r["tokens_per_second_median"]
        if r["model"] not in models:
            models.append(r["model"])
    params = {r["model"]: r["parameters"] for r in ppl}
    print("Perplexity-pass throughput, tokens/s (median of reps; seq_len %d)" % ppl[0]["seq_len"])
    head = "| model | params | dtype | " + " | ".join("%d thr" % t for t in threads)
    if len(threads) > 1:
        head += " | %d/%d thr" % (threads[-1], threads[0])
    head += " | vs float32 |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for m in models:
        for (mm, dt), v in by.items():
            if mm != m:
                continue
            cells = ["%.1f" % v[t] if t in v else "-" for t in threads]
            line = "| %s | %.1fM | %s | %s" % (m, params[m] / 1e6, dt, " | ".join(cells))
            if len(threads) > 1 and threads[0] in v and threads[-1] in v:
                line += " | %.2fx" % (v[threads[-1]] / v[threads[0]])
            ref = by.get((m, "float32"), {})
            t = threads[-1]
            line += " | %.2fx |" % (v[t] / ref[t]) if t in ref and t in v else " | - |"
            print(line)


if __name__ == "__main__":
    main()
