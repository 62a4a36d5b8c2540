#!/usr/bin/python3
"""Independent float64 numpy reference for the llama2.c model runtime and evaluation.

Dev-only tool (Debian python3-numpy, python3-sentencepiece). It writes the JSON oracles
under tests/data/reference/ that the C++ tests compare against:

    /usr/bin/python3 scripts/reference/llama_ref.py --data /work/shared/data --out tests/data/reference

The implementation deliberately follows the written specs (llama2.c forward semantics,
the perplexity windowing protocol, lm-evaluation-harness loglikelihood scoring) and
shares no code with the C++ implementation.
"""

import argparse
import json
import math
import os
import re
import struct
import sys
import time

import numpy as np
import sentencepiece as spm

BOS = 1
EOS = 2

MODELS = {
    "stories260K": "models/stories260K/stories260K.bin",
    "llama2xs-64d": "models/llama2xs-64d/model.bin",
}
TOKENIZER = "models/stories260K/tok512.model"

# MANIFEST.md oracles (section 1 validation)
MANIFEST_GREEDY_BOS = {
    "stories260K": [403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338,
                    401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385,
                    328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267,
                    337, 335, 312, 432, 398, 312, 286, 267, 414, 270, 333, 415, 426, 13, 438, 310],
    "llama2xs-64d": [403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338,
                     401, 396, 267, 337, 410, 408, 419, 292, 411, 269, 280, 314, 411, 267, 337, 335,
                     311, 374, 419, 426, 385, 328, 432, 358, 263, 377, 267, 265, 282, 295, 433, 267,
                     337, 335, 311, 267, 422, 419, 426, 338, 286, 399, 393, 426, 346, 391, 266, 267],
}
# MANIFEST.md quotes this text without the final " with"; the upstream source it cites
# (ytmytm/llama2.c64 README, `./run stories260K.bin -z tok512.bin -t 0 -i "Zoo" -n 60`) ends in
# "... didn't want to play with", which is 60 tokens after BOS as llama2.c prints. We check upstream's.
MANIFEST_ZOO_TEXT = ("Zoo was a little girl named Lily. She loved to play outside in the park. One day, "
                     "she saw a big, red ball. She wanted to play with it, but she didn't want to play with")
MANIFEST_NLL_TEXT = "Once upon a time, there was a little girl named Lily. She loved to"
MANIFEST_NLL = {"stories260K": 0.101, "llama2xs-64d": 0.157}

LOGITS_TEXT = "Once upon a time, there was a little girl named Lily."


# ---------------------------------------------------------------------------
# model
# ---------------------------------------------------------------------------

def load_model(path):
    with open(path, "rb") as f:
        raw = f.read()
    dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len = struct.unpack("<7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    hs = dim // n_heads
    kvd = n_kv_heads * hs
    data = np.frombuffer(raw, dtype="<f4", offset=28)
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        a = data[off:off + n].astype(np.float64).reshape(shape)
        off += n
        return a

    m = {
        "dim": dim, "hidden_dim": hidden, "n_layers": n_layers, "n_heads": n_heads,
        "n_kv_heads": n_kv_heads, "vocab_size": vocab, "seq_len": seq_len, "shared_classifier": shared,
        "head_size": hs,
    }
    m["tok_embeddings"] = take(vocab, dim)
    m["rms_att"] = take(n_layers, dim)
    m["wq"] = take(n_layers, dim, dim)
    m["wk"] = take(n_layers, kvd, dim)
    m["wv"] = take(n_layers, kvd, dim)
    m["wo"] = take(n_layers, dim, dim)
    m["rms_ffn"] = take(n_layers, dim)
    m["w1"] = take(n_layers, hidden, dim)
    m["w2"] = take(n_layers, dim, hidden)
    m["w3"] = take(n_layers, hidden, dim)
    m["rms_final"] = take(dim)
    m["freq_cis_real"] = take(seq_len, hs // 2)
    m["freq_cis_imag"] = take(seq_len, hs // 2)
    m["wcls"] = m["tok_embeddings"] if shared else take(vocab, dim)
    if off != data.size:
        raise ValueError("%s: %d trailing floats (layout mismatch)" % (path, data.size - off))
    # RoPE is computed in float64 from theta_i = 10000^(-2i/hs); check it against the stored tables
    ang = rope_angles(seq_len, hs)
    err = max(np.abs(np.cos(ang) - m["freq_cis_real"]).max(), np.abs(np.sin(ang) - m["freq_cis_imag"]).max())
    if err > 1e-4:
        raise ValueError("%s: freq_cis tables disagree with theta formula (max err %g)" % (path, err))
    m["freq_cis_max_abs_err"] = float(err)
    return m


def rope_angles(n_pos, hs):
    i = np.arange(hs // 2, dtype=np.float64)
    theta = 10000.0 ** (-2.0 * i / hs)
    return np.arange(n_pos, dtype=np.float64)[:, None] * theta[None, :]


def rmsnorm(x, w, eps=1e-5):
    return x * w / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)


def apply_rope(x, cos, sin):
    # x: [T, heads, hs]; rotate adjacent pairs (2i, 2i+1)
    x0 = x[..., 0::2]
    x1 = x[..., 1::2]
    c = cos[:, None, :]
    s = sin[:, None, :]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * c - x1 * s
    out[..., 1::2] = x0 * s + x1 * c
    return out


def forward(m, ids):
    """Full causal forward over ids (positions 0..T-1). Returns logits [T, V] (float64)."""
    ids = np.asarray(ids, dtype=np.int64)
    T = len(ids)
    if T > m["seq_len"]:
        raise ValueError("sequence of %d exceeds seq_len %d" % (T, m["seq_len"]))
    D, nh, nkv, hs = m["dim"], m["n_heads"], m["n_kv_heads"], m["head_size"]
    group = nh // nkv
    ang = rope_angles(T, hs)
    cos, sin = np.cos(ang), np.sin(ang)
    mask = np.triu(np.full((T, T), -np.inf), k=1)
    x = m["tok_embeddings"][ids].copy()
    for l in range(m["n_layers"]):
        xb = rmsnorm(x, m["rms_att"][l])
        q = (xb @ m["wq"][l].T).reshape(T, nh, hs)
        k = (xb @ m["wk"][l].T).reshape(T, nkv, hs)
        v = (xb @ m["wv"][l].T).reshape(T, nkv, hs)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        att_out = np.empty((T, nh, hs))
        for h in range(nh):
            kh = h // group
            s = (q[:, h, :] @ k[:, kh, :].T) / math.sqrt(hs) + mask
            s = s - s.max(axis=-1, keepdims=True)
            p = np.exp(s)
            p /= p.sum(axis=-1, keepdims=True)
            att_out[:, h, :] = p @ v[:, kh, :]
        x = x + att_out.reshape(T, D) @ m["wo"][l].T
        xb = rmsnorm(x, m["rms_ffn"][l])
        a = xb @ m["w1"][l].T
        b = xb @ m["w3"][l].T
        hb = (a / (1.0 + np.exp(-a))) * b
        x = x + hb @ m["w2"][l].T
    x = rmsnorm(x, m["rms_final"])
    return x @ m["wcls"].T


def log_softmax(logits):
    mx = logits.max(axis=-1, keepdims=True)
    z = logits - mx
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def next_token_nll(m, ids):
    """NLL (nats) of ids[t+1] given ids[:t+1], for t = 0..T-2."""
    lp = log_softmax(forward(m, ids))
    ids = np.asarray(ids)
    return -lp[np.arange(len(ids) - 1), ids[1:]]


def greedy(m, prompt_ids, steps):
    """llama2.c `run -t 0 -n steps` semantics: positions 0..steps-1 are forwarded; at each position the
    next token is the forced prompt token while the prompt lasts, else argmax (first max). Generation
    stops early if the next token is BOS (1). Returns the tokens after the first prompt token (length
    <= steps); the forward is recomputed over the whole prefix each step (no KV cache)."""
    seq = list(prompt_ids)
    out = []
    stopped_on_bos = False
    for pos in range(min(steps, m["seq_len"])):
        if pos + 1 < len(prompt_ids):
            nxt = prompt_ids[pos + 1]
        else:
            logits = forward(m, seq[:pos + 1])[-1]
            nxt = int(np.argmax(logits))
        if nxt == BOS:
            stopped_on_bos = True
            break
        out.append(int(nxt))
        if pos + 1 >= len(seq):
            seq.append(int(nxt))
    return out, stopped_on_bos


# ---------------------------------------------------------------------------
# perplexity
# ---------------------------------------------------------------------------

def read_text(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8")  # no newline translation: CRLF stays CRLF


def ppl_case(m, stream, seq_len, bos, max_windows):
    step = seq_len - 1 if bos else seq_len
    n_avail = len(stream) // step
    n_win = n_avail if max_windows is None else min(n_avail, max_windows)
    total = 0.0
    count = 0
    per_window = []
    for w in range(n_win):
        chunk = stream[w * step:(w + 1) * step]
        ids = [BOS] + chunk if bos else chunk
        assert len(ids) == seq_len
        nll = next_token_nll(m, ids)
        per_window.append(float(nll.sum()))
        total += float(nll.sum())
        count += len(nll)
    mean = total / count
    return {
        "n_windows_available": n_avail,
        "n_windows": n_win,
        "n_predicted": count,
        "window_nll_sums": per_window,
        "mean_nll": mean,
        "ppl": math.exp(mean),
    }


# ---------------------------------------------------------------------------
# multiple-choice tasks (lm-evaluation-harness loglikelihood)
# ---------------------------------------------------------------------------

def hellaswag_preprocess(t):
    t = t.strip()
    t = t.replace(" [title]", ". ")
    t = re.sub("\\[.*?\\]", "", t)
    t = t.replace("  ", " ")
    return t


def loglikelihood(m, sp, context, choice):
    cont_str = " " + choice
    ctx = [BOS] + sp.encode(context)
    whole = [BOS] + sp.encode(context + cont_str)
    cont = whole[len(ctx):]
    max_len = m["seq_len"]
    inp = whole[-(max_len + 1):][:-1]
    n = len(cont)
    if n == 0:
        score = 0.0
    else:
        lp = log_softmax(forward(m, inp))
        pos = np.arange(len(inp) - n, len(inp))
        score = float(lp[pos, np.asarray(cont)].sum())
    return {
        "ctx_tokens": len(ctx),
        "whole_tokens": len(whole),
        "cont_tokens": n,
        "input_tokens": len(inp),
        "truncated": len(whole) - 1 > max_len,
        "prefix_mismatch": whole[:len(ctx)] != ctx,
        "cont_bytes": len(cont_str.encode("utf-8")),
        "score": score,
    }


def first_argmax(vals):
    best = 0
    for i, v in enumerate(vals):
        if v > vals[best]:
            best = i
    return best


def load_jsonl(path, limit):
    rows = []
    with open(path, "rb") as f:
        for line in f:
            line = line.decode("utf-8").strip()
            if not line:
                continue
            rows.append(json.loads(line))
            if len(rows) >= limit:
                break
    return rows


def build_items(data_dir, task, limit):
    """Return list of dicts {contexts: [..], choices: [..], gold, extra}. For single-context tasks
    contexts has one entry used for all choices; WinoGrande has one context per option and a single
    shared continuation."""
    items = []
    if task == "hellaswag":
        for r in load_jsonl(os.path.join(data_dir, "eval/hellaswag/val_1000.jsonl"), limit):
            ctx = r["ctx_a"] + " " + r["ctx_b"].capitalize()
            c = hellaswag_preprocess(r["activity_label"] + ": " + ctx)
            items.append({
                "contexts": [c],
                "choices": [hellaswag_preprocess(e) for e in r["endings"]],
                "gold": int(r["label"]),
                "ind": r.get("ind"),
                "ctx_b_non_ascii": any(ord(ch) > 127 for ch in r["ctx_b"]),
            })
    elif task == "winogrande":
        for r in load_jsonl(os.path.join(data_dir, "eval/winogrande/icl.jsonl"), limit):
            items.append({
                "contexts": list(r["context_options"]),
                "choices": [r["continuation"]],
                "gold": int(r["gold"]),
            })
    else:
        for r in load_jsonl(os.path.join(data_dir, "eval/%s/icl.jsonl" % task), limit):
            items.append({"contexts": [r["query"]], "choices": list(r["choices"]), "gold": int(r["gold"])})
    return items


def run_task(m, sp, data_dir, task, limit):
    items = build_items(data_dir, task, limit)
    out_items = []
    n_acc = 0
    n_acc_norm = 0
    for idx, it in enumerate(items):
        if task == "winogrande":
            pairs = [(c, it["choices"][0]) for c in it["contexts"]]
        else:
            pairs = [(it["contexts"][0], x) for x in it["choices"]]
        res = [loglikelihood(m, sp, c, x) for c, x in pairs]
        scores = [r["score"] for r in res]
        normed = [r["score"] / r["cont_bytes"] for r in res]
        pred = first_argmax(scores)
        pred_norm = first_argmax(normed)
        n_acc += int(pred == it["gold"])
        n_acc_norm += int(pred_norm == it["gold"])
        rec = {
            "index": idx,
            "gold": it["gold"],
            "pred": pred,
            "pred_norm": pred_norm,
            "scores": scores,
            "ctx_tokens": [r["ctx_tokens"] for r in res],
            "cont_tokens": [r["cont_tokens"] for r in res],
            "cont_bytes": [r["cont_bytes"] for r in res],
            "input_tokens": [r["input_tokens"] for r in res],
        }
        if task == "winogrande":
            rec["contexts"] = it["contexts"]
            rec["continuation"] = it["choices"][0]
        else:
            rec["context"] = it["contexts"][0]
            rec["choices"] = it["choices"]
        if any(r["truncated"] for r in res):
            rec["truncated"] = [r["truncated"] for r in res]
        if any(r["prefix_mismatch"] for r in res):
            rec["prefix_mismatch"] = [r["prefix_mismatch"] for r in res]
        if task == "hellaswag":
            rec["ind"] = it["ind"]
            rec["ctx_b_non_ascii"] = it["ctx_b_non_ascii"]
        out_items.append(rec)
    n = len(items)
    return {
        "n_items": n,
        "acc": n_acc / n,
        "acc_norm": n_acc_norm / n,
        "n_correct": n_acc,
        "n_correct_norm": n_acc_norm,
        "prefix_mismatch_items": [r["index"] for r in out_items if "prefix_mismatch" in r],
        "truncated_items": [r["index"] for r in out_items if "truncated" in r],
        "items": out_items,
    }


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("wrote %s (%d bytes)" % (path, os.path.getsize(path)))


def config_of(m):
    return {k: m[k] for k in ("dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size",
                              "seq_len", "shared_classifier")}


def validate(models, sp):
    print("== validation against MANIFEST.md")
    ok = True
    report = {}
    for name, m in models.items():
        got, _ = greedy(m, [BOS], 64)
        g_ok = got == MANIFEST_GREEDY_BOS[name]
        ids = [BOS] + sp.encode(MANIFEST_NLL_TEXT)
        nll = next_token_nll(m, ids)
        mean = float(nll.mean())
        n_ok = round(mean, 3) == MANIFEST_NLL[name] and len(nll) == 19
        print("%-13s greedy64 %s  nll(%d targets) %.6f (manifest %.3f) %s" %
              (name, "OK" if g_ok else "FAIL", len(nll), mean, MANIFEST_NLL[name], "OK" if n_ok else "FAIL"))
        print("   ids:", ",".join(map(str, got)))
        report[name] = {"greedy_bos_64_ok": g_ok, "manifest_nll_text_mean": mean, "manifest_nll_ok": n_ok}
        ok = ok and g_ok and n_ok
    m = models["stories260K"]
    prompt = [BOS] + sp.encode("Zoo")
    zoo, _ = greedy(m, prompt, 60)
    text = sp.decode(zoo)
    z_ok = prompt == [1, 410, 469, 347] and text == MANIFEST_ZOO_TEXT
    print("stories260K Zoo/60 %s: %r" % ("OK" if z_ok else "FAIL", text))
    report["stories260K"]["zoo_60_ok"] = z_ok
    ok = ok and z_ok
    return ok, report


def main():
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(repo, "..", "shared", "data"),
                    help="shared data directory (default: ../shared/data relative to the repo root)")
    ap.add_argument("--out", default=os.path.join(repo, "tests", "data", "reference"),
                    help="output directory for the JSON oracles")
    ap.add_argument("--only", choices=["validate", "logits", "ppl", "tasks"], action="append",
                    help="run only some parts (repeatable); default all")
    ap.add_argument("--limit", type=int, default=10, help="items per task (default 10)")
    args = ap.parse_args()
    data = os.path.abspath(args.data)
    parts = set(args.only or ["validate", "logits", "ppl", "tasks"])
    t0 = time.time()

    sp = spm.SentencePieceProcessor(model_file=os.path.join(data, TOKENIZER))
    models = {name: load_model(os.path.join(data, rel)) for name, rel in MODELS.items()}

    ok, val_report = validate(models, sp)
    if not ok:
        print("VALIDATION FAILED: not writing outputs", file=sys.stderr)
        return 1
    if parts == {"validate"}:
        return 0
    os.makedirs(args.out, exist_ok=True)
    common = {
        "generator": "scripts/reference/llama_ref.py (float64 numpy)",
        "tokenizer": TOKENIZER,
        "bos": BOS,
        "eos": EOS,
    }

    if "logits" in parts:
        out = dict(common)
        out["text"] = LOGITS_TEXT
        out["positions_note"] = ("logits[p] are the outputs at position p of input_ids; nll[t] = -log_softmax("
                                 "logits[t])[input_ids[t+1]] for t = 0..len-2. greedy: llama2.c run -t 0 -n steps "
                                 "semantics; 'tokens' are the tokens after BOS (prompt tokens included), length steps.")
        out["notes"] = [
            "Zoo/60: MANIFEST.md quotes the text without the final ' with'; the cited upstream README "
            "(ytmytm/llama2.c64, ./run -t 0 -i Zoo -n 60) and llama2.c semantics give 60 tokens ending in ' with'.",
            "A float32 llama2.c-style KV-cache loop using the file's freq_cis tables matched these float64 "
            "logits to ~1.2e-5 absolute and the per-token NLL to ~5e-7 when this file was generated.",
        ]
        out["models"] = {}
        for name, m in models.items():
            ids = [BOS] + sp.encode(LOGITS_TEXT)
            logits = forward(m, ids)
            lp = log_softmax(logits)
            nll = -lp[np.arange(len(ids) - 1), np.asarray(ids[1:])]
            last = len(ids) - 1
            g_bos, stop_bos = greedy(m, [BOS], 64)
            zoo_prompt = [BOS] + sp.encode("Zoo")
            g_zoo, stop_zoo = greedy(m, zoo_prompt, 60)
            out["models"][name] = {
                "file": MODELS[name],
                "config": config_of(m),
                "input_ids": ids,
                "logits": {str(p): [float(v) for v in logits[p]] for p in (0, 1, last)},
                "argmax": [int(a) for a in logits.argmax(axis=-1)],
                "nll": [float(v) for v in nll],
                "mean_nll": float(nll.mean()),
                "greedy": [
                    {"prompt": "", "prompt_ids": [BOS], "steps": 64, "tokens": g_bos,
                     "stopped_on_bos": stop_bos, "text": sp.decode(g_bos)},
                    {"prompt": "Zoo", "prompt_ids": zoo_prompt, "steps": 60, "tokens": g_zoo,
                     "stopped_on_bos": stop_zoo, "text": sp.decode(g_zoo)},
                ],
                "manifest_nll_text": MANIFEST_NLL_TEXT,
                "manifest_nll_text_mean": val_report[name]["manifest_nll_text_mean"],
            }
        write_json(os.path.join(args.out, "logits.json"), out)

    if "ppl" in parts:
        out = dict(common)
        out["protocol"] = ("bytes decoded as UTF-8 without newline translation; sp.encode(whole text) as one stream "
                           "(no BOS); consecutive non-overlapping windows of seq_len tokens (last partial dropped), "
                           "each scored from an empty cache; ppl = exp(mean NLL over seq_len-1 predictions per "
                           "window). bos=true: window = [BOS] + (seq_len-1) text tokens, all text tokens "
                           "predicted, stride seq_len-1. max_windows keeps the first N windows.")
        cases = [
            ("stories260K", "text/tinystories/tinystories_valid_subset.txt", 256, False, 6),
            ("stories260K", "text/tinystories/tinystories_valid_subset.txt", 256, True, 6),
            ("llama2xs-64d", "text/tinystories/tinystories_valid_subset.txt", 128, False, 6),
            ("llama2xs-64d", "text/tinystories/tinystories_valid_subset.txt", 128, True, 6),
            ("stories260K", "text/wikitext-2-raw/wiki.test.raw", 256, False, 4),
            ("stories260K", "text/ptb/ptb.test.txt", 128, False, 4),
        ]
        streams = {}
        out["files"] = {}
        for _, rel, _, _, _ in cases:
            if rel not in streams:
                text = read_text(os.path.join(data, rel))
                streams[rel] = sp.encode(text)
                out["files"][rel] = {"chars": len(text), "bytes": len(text.encode("utf-8")),
                                     "n_tokens": len(streams[rel]),
                                     "first_tokens": streams[rel][:32], "last_tokens": streams[rel][-8:]}
        out["tinystories_total_tokens"] = out["files"]["text/tinystories/tinystories_valid_subset.txt"]["n_tokens"]
        out["cases"] = []
        for name, rel, S, bos, mw in cases:
            r = ppl_case(models[name], streams[rel], S, bos, mw)
            rec = {"model": name, "file": rel, "seq_len": S, "bos": bos, "max_windows": mw,
                   "n_stream_tokens": len(streams[rel])}
            rec.update(r)
            out["cases"].append(rec)
            print("ppl %-13s %-46s S=%d bos=%d win=%d pred=%d nll=%.6f ppl=%.6f" %
                  (name, rel, S, bos, r["n_windows"], r["n_predicted"], r["mean_nll"], r["ppl"]))
        write_json(os.path.join(args.out, "ppl.json"), out)

    if "tasks" in parts:
        out = dict(common)
        out["model"] = "stories260K"
        out["max_len"] = models["stories260K"]["seq_len"]
        out["limit"] = args.limit
        out["protocol"] = ("lm-evaluation-harness loglikelihood: cont string = ' ' + X; ctx = [BOS]+enc(C); "
                           "whole = [BOS]+enc(C+' '+X); cont = whole[len(ctx):]; inp = whole[-(max_len+1):][:-1]; "
                           "score = sum log_softmax at the last len(cont) positions of inp. acc = first argmax of "
                           "score; acc_norm = first argmax of score / len((' '+X).encode('utf-8')). WinoGrande: "
                           "one shared continuation scored under each context_options[i]. HellaSwag: lm-eval "
                           "preprocess, ctx_b.capitalize().")
        out["notes"] = [
            "acc_norm divides by the UTF-8 byte length of ' ' + X (this project's spec); lm-evaluation-harness "
            "v0.4 divides by len(X) in characters without the delimiter, which can rank choices differently.",
            "Contexts are used verbatim: PIQA queries end in '\\n', so C + ' ' + X = '...\\n X'. The harness "
            "would move trailing whitespace of the context into the continuation; this spec does not.",
            "prefix_mismatch (per item, only when true) flags whole[:len(ctx)] != ctx; scoring ignores it.",
            "truncated flags len(whole) - 1 > max_len (tokens dropped from the left).",
            "hellaswag items carry ctx_b_non_ascii (str.capitalize on non-ASCII text is locale/Unicode sensitive).",
        ]
        out["tasks"] = {}
        m = models["stories260K"]
        for task in ["boolq", "piqa", "winogrande", "arc_easy", "arc_challenge", "openbookqa", "hellaswag",
                     "social_i_qa"]:
            r = run_task(m, sp, data, task, args.limit)
            if task == "hellaswag":
                r["ctx_b_non_ascii_items"] = [it["index"] for it in r["items"] if it["ctx_b_non_ascii"]]
            out["tasks"][task] = r
            print("task %-14s acc %.2f acc_norm %.2f  prefix_mismatch %s truncated %s" %
                  (task, r["acc"], r["acc_norm"], r["prefix_mismatch_items"], r["truncated_items"]))
        write_json(os.path.join(args.out, "tasks.json"), out)

    print("done in %.1fs" % (time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
