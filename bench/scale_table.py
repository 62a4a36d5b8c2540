#!/usr/bin/env python3
"""Prints bench/scale.sh's tables from its JSON lines: throughput per size and variant next to llama.cpp, and the
pipeline's stages in seconds, forward-pass multiples and peak RSS, and the peak RSS of the large-model steps."""
import json
import sys


def main():
    rows = [json.loads(l) for f in sys.argv[1:] for l in open(f) if l.strip().startswith("{")]
    cpu = next((r for r in rows if r["bench"] == "cpu"), None)
    if cpu:
        print(f"CPU: {cpu['model']}; flags: {' '.join(cpu['flags']) or 'none of avx2/avx512'}\n")
    ours = [r for r in rows if r["bench"] == "qpruner_pp"]
    theirs = [r for r in rows if r["bench"] == "llamacpp_pp"]
    pair = {"fp32": "F32", "bf16": "BF16", "int8": "Q8_0", "nf4": "Q4_0"}
    for size in dict.fromkeys(r["size"] for r in ours + theirs):
        fp32 = next((r["tokens_per_second_median"] for r in ours if r["size"] == size and r["variant"] == "fp32"), None)
        ll = {r["type"]: r["tokens_per_second_median"] for r in theirs if r["size"] == size}
        print(f"Perplexity pass, random {size} (stored bf16), windows of 256 tokens, tokens/s (median)")
        print("| variant | computes in | qpruner | vs fp32 | peak RSS | llama.cpp type | llama.cpp | qpruner / llama.cpp |")
        print("|---|---|---|---|---|---|---|---|")
        for r in (r for r in ours if r["size"] == size):
            t = r["tokens_per_second_median"]
            lt = pair.get(r["variant"].removesuffix("-libtorch"))
            lv = ll.get(lt) if lt else None
            print(f"| {r['variant']} | {r['compute']} | {t:,.1f} | {t / fp32:.2f}x | {r['peak_rss_kib'] / 1024:,.0f} MiB "
                  f"| {lt or ''} | {f'{lv:,.1f}' if lv else ''} | {f'{t / lv:.2f}x' if lv else ''} |")
        for t in ("IQ4_NL",):
            if t in ll:
                print(f"| | | | | | {t} | {ll[t]:,.1f} | |")
        print()
    forward = {r["model"]: r["seconds"] for r in rows if r["bench"] == "forward"}
    stages = [r for r in rows if r["bench"] == "stage_time"]
    if stages and forward:
        models = list(forward)
        pruned, dense = forward[models[0]], forward[models[-1]]
        print(f"Pipeline stages (forward pass over the same 8 x 256 tokens: {dense:.1f} s dense, {pruned:.1f} s pruned)")
        print("| stage | status | seconds | forward passes | peak RSS |")
        print("|---|---|---|---|---|")
        for r in stages:
            ref = dense if r["stage"] == "prune" else pruned
            rss = r.get("peak_rss_bytes")
            print(f"| {r['stage']} | {r['status']} | {r['seconds']:.1f} | {r['seconds'] / ref:.2f} | "
                  f"{f'{rss / 2**20:,.0f} MiB' if rss else ''} |")
        print()
    memory = [r for r in rows if r["bench"] == "memory"]
    if memory:
        print("Peak RSS on a model too large to hold twice (8 x 256 tokens)")
        print("| size | step | seconds | peak RSS | trial: quantize s | evaluate s |")
        print("|---|---|---|---|---|---|")
        for r in memory:
            rss = r.get("peak_rss_bytes")
            print(f"| {r['size']} | {r['step']} | {r['seconds'] or 0:.0f} | {f'{rss / 2**30:.2f} GiB' if rss else ''} | "
                  f"{r.get('quantize_seconds') or '':} | {r.get('evaluate_seconds') or ''} |")


if __name__ == "__main__":
    main()
