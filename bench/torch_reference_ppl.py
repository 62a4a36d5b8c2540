#!/usr/bin/python3
"""The perplexity pass of a llama2.c checkpoint written the way a researcher would in PyTorch (Python, eager,
fp32, batched windows, F.scaled-free attention as in llama2.c's model.py), timed whole-process like
`qpruner eval-ppl`, for bench/overhead.sh. Needs Debian's python3-torch, python3-numpy, python3-sentencepiece.

  /usr/bin/python3 bench/torch_reference_ppl.py MODEL.bin TOKENIZER.model TEXT --seq-len 256 --windows 200
Prints one JSON line: ppl, tokens/s of the pass, and the whole process's seconds."""
import argparse
import json
import math
import os
import sys
import time

T_START = time.time()

import numpy as np  # noqa: E402
import sentencepiece as spm  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts", "reference"))
from llama_ref import load_model  # noqa: E402


class Llama(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        t = lambda a: torch.tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
        self.nh, self.nkv, self.hs, self.L = m["n_heads"], m["n_kv_heads"], m["head_size"], m["n_layers"]
        self.emb = t(m["tok_embeddings"])
        self.w = {k: t(m[k]) for k in ("rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3")}
        self.rms_final, self.wcls = t(m["rms_final"]), t(m["wcls"])
        self.cos, self.sin = t(m["freq_cis_real"]), t(m["freq_cis_imag"])

    @staticmethod
    def rmsnorm(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w

    def rope(self, x, T):  # adjacent pairs, as llama2.c
        x = x.float().reshape(*x.shape[:-1], -1, 2)
        c, s = self.cos[:T].view(1, T, 1, -1), self.sin[:T].view(1, T, 1, -1)
        x0, x1 = x[..., 0], x[..., 1]
        return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), -1).flatten(3)

    def forward(self, ids):
        B, T = ids.shape
        x = self.emb[ids]
        mask = torch.full((T, T), float("-inf")).triu(1)
        g = self.nh // self.nkv
        for l in range(self.L):
            w = {k: v[l] for k, v in self.w.items()}
            h = self.rmsnorm(x, w["rms_att"])
            q = self.rope((h @ w["wq"].T).view(B, T, self.nh, self.hs), T)
            k = self.rope((h @ w["wk"].T).view(B, T, self.nkv, self.hs), T)
            v = (h @ w["wv"].T).view(B, T, self.nkv, self.hs)
            k = k.repeat_interleave(g, dim=2)
            v = v.repeat_interleave(g, dim=2)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            s = q @ k.transpose(-1, -2) / math.sqrt(self.hs) + mask
            o = (F.softmax(s, -1) @ v).transpose(1, 2).reshape(B, T, -1)
            x = x + o @ w["wo"].T
            h = self.rmsnorm(x, w["rms_ffn"])
            x = x + (F.silu(h @ w["w1"].T) * (h @ w["w3"].T)) @ w["w2"].T
        return self.rmsnorm(x, self.rms_final) @ self.wcls.T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("tokenizer")
    ap.add_argument("text")
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--windows", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = Llama(load_model(a.model))
    sp = spm.SentencePieceProcessor(model_file=a.tokenizer)
    stream = sp.encode(open(a.text, encoding="utf-8").read())
    windows = min(a.windows, len(stream) // a.seq_len)
    t0 = time.time()
    total = 0.0
    with torch.inference_mode():
        for w0 in range(0, windows, a.batch_size):
            b = min(a.batch_size, windows - w0)
            ids = torch.tensor([stream[(w0 + i) * a.seq_len:(w0 + i + 1) * a.seq_len] for i in range(b)])
            logits = model(ids[:, :-1])
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1),
                                     reduction="sum").item()
    secs = time.time() - t0
    n = windows * (a.seq_len - 1)
    print(json.dumps({"bench": "torch_reference_ppl", "ppl": math.exp(total / n), "windows": windows,
                      "tokens_per_second": n / secs, "pass_seconds": secs,
                      "process_seconds": time.time() - T_START, "threads": a.threads}))


if __name__ == "__main__":
    main()
