#!/usr/bin/python3
"""Reference data for the tokenizer tests (dev-only; the C++ tests never run Python).

Three jobs, each its own subcommand, because no single interpreter here has everything:

  /usr/bin/python3 scripts/reference/make_tokenizer_refs.py spm
      Needs Debian's python3-sentencepiece. Writes tests/data/tokenizer/spm_refs.json: the ids that
      libsentencepiece gives for whole documents (first TinyStories stories as one string, a 4 KB byte slice
      of wiki.test.raw with its CRLF line ends) and for tricky strings, with both shared .model files, plus
      decode() results for hand-picked id sequences.

  python3 scripts/reference/make_tokenizer_refs.py bpe
      Needs the `regex` module (\\p{L} / \\p{N}). Trains two tiny byte-level BPE tokenizers over a slice of
      the shared text (Llama-3 style and GPT-2 style tokenizer.json fixtures) and writes bpe_refs.json: ids
      computed by the straightforward Python BPE below (the split uses the real regex patterns through
      `regex`, independent of the hand-written C++ splitter).

  python3 scripts/reference/make_tokenizer_refs.py unicode-tables
      Regenerates core/src/tokenizer/unicode_tables.cpp (letter and number ranges) from unicodedata.

Options: --data (shared data, default ../shared/data from the repository root), --repo (default: this
script's repository).
"""

import argparse
import json
import os
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

SPM_MODELS = {
    "tok512": "models/stories260K/tok512.model",
    "llama2": "models/llama2-tokenizer/tokenizer.model",
}

TRICKY = [
    "", " ", "   ", "a", " a", "a ", "  a  b  ", " a  b", "a  b", "Once upon a time",
    "Hello,   world!\n", "\t tab\tand\ttabs \t", "line1\nline2\r\nline3\n\n", "\n", "  \n  ",
    "x\x00y", "café naïve résumé", "日本語のテキスト", "emoji 😀🎉👍🏽", "¿Qué? Ñandú — “quotes” …",
    "\u3000ideographic space", "\ufffd replacement", "non-breaking\u00a0space", "combining e\u0301",
    "<s> and </s> and <unk> literally", "<0x41> byte piece text", "\u2581 lower one eighth block",
    "zero\u200bwidth", "1234567890 3.14159", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "The quick brown fox jumps over the lazy dog.", "  leading", "trailing  ", "I'm here, aren't you?",
]
# Malformed UTF-8, stored as hex because JSON strings cannot hold it.
TRICKY_BYTES = [b"a\xffb", b"\xe4\xb8", b"\xc0\xafx", b"\xed\xa0\x80", b"ok\x80\x80end", b"\xf0\x9f\x98"]


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("wrote", path, os.path.getsize(path), "bytes")


def first_stories(data_dir, count=3):
    """The text up to the start of story `count + 1` (a story starts with 'Once upon a time')."""
    with open(os.path.join(data_dir, "text/tinystories/tinystories_valid_subset.txt"), "rb") as f:
        text = f.read().decode("utf-8")
    start = text.index("Once upon a time")
    pos = start
    for _ in range(count):
        pos = text.index("Once upon a time", pos + 1)
    return text[start:pos]


def wiki_slice(data_dir, size=4096):
    """The first `size` bytes of wiki.test.raw, read as bytes (CRLF kept), cut back to a character."""
    with open(os.path.join(data_dir, "text/wikitext-2-raw/wiki.test.raw"), "rb") as f:
        raw = f.read(size + 4)
    while True:
        try:
            return raw[:size].decode("utf-8")
        except UnicodeDecodeError:
            size -= 1


def cmd_spm(args):
    import sentencepiece as spm

    docs = [("tinystories_first_stories", first_stories(args.data)), ("wikitext_raw_4k", wiki_slice(args.data))]
    out = {"generator": "scripts/reference/make_tokenizer_refs.py spm",
           "sentencepiece_version": spm.__version__, "models": {}}
    decode_ids = {
        "tok512": [[1, 403, 407], [403, 407, 2], [1, 1, 403], [410, 403], [1, 410, 410, 403], [0, 403],
                   [231, 187, 403], [231, 403], [258], [2, 403], [262, 3 + 0xE4, 3 + 0xB8, 3 + 0x80, 403],
                   [3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80], [3 + 0xF0, 3 + 0x9F, 3 + 0x98]],
        "llama2": [[1, 9038, 2501], [9038, 2501, 2], [1, 1, 9038], [29871, 9038], [1, 29871, 29871, 9038],
                   [0, 9038], [231, 187, 9038], [231, 9038], [258], [2, 9038], [13, 13, 9038], [259, 9038],
                   [3 + 0xE4, 3 + 0xB8, 3 + 0x80], [3 + 0xF0, 3 + 0x9F, 3 + 0x98]],
    }
    for name, rel in SPM_MODELS.items():
        sp = spm.SentencePieceProcessor(model_file=os.path.join(args.data, rel))
        cases = []
        for cname, text in docs:
            ids = sp.encode(text)
            cases.append({"name": cname, "text": text, "ids": ids, "decoded": sp.decode(ids)})
        for i, text in enumerate(TRICKY):
            ids = sp.encode(text)
            cases.append({"name": "tricky_%d" % i, "text": text, "ids": ids, "decoded": sp.decode(ids)})
        for i, raw in enumerate(TRICKY_BYTES):
            ids = sp.encode(raw)
            cases.append({"name": "malformed_%d" % i, "text_hex": raw.hex(), "ids": ids, "decoded": sp.decode(ids)})
        decodes = [{"ids": ids, "text": sp.decode(ids)} for ids in decode_ids[name]]
        out["models"][name] = {"file": rel, "vocab_size": sp.get_piece_size(), "bos_id": sp.bos_id(),
                               "eos_id": sp.eos_id(), "unk_id": sp.unk_id(), "cases": cases,
                               "decode_cases": decodes}
    write_json(os.path.join(args.repo, "tests/data/tokenizer/spm_refs.json"), out)


# ---------------------------------------------------------------------------------------------------------
# Byte-level BPE fixtures

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3_PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
                  r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")


def bytes_to_unicode():
    """GPT-2's reversible map from the 256 bytes to printable characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs])), bs


def train_bpe(words, num_merges):
    """Classic BPE: merge the most frequent adjacent pair; ties go to the smallest pair (deterministic)."""
    from collections import Counter
    seqs = {w: tuple(w) for w in words}
    merges = []
    for _ in range(num_merges):
        pairs = Counter()
        for w, n in words.items():
            s = seqs[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], [-ord(c) for c in kv[0][0] + "\0" + kv[0][1]]))[0]
        merges.append(best)
        for w in words:
            s = seqs[w]
            if len(s) < 2:
                continue
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = tuple(out)
    return merges


class PyBpe:
    """Straightforward Hugging Face style byte-level BPE, for reference ids."""

    def __init__(self, pattern, vocab, merges, specials, ignore_merges):
        import regex
        self.re = regex.compile(pattern)
        self.vocab = vocab
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.specials = sorted(specials.items(), key=lambda kv: -len(kv[0]))
        self.ignore_merges = ignore_merges
        self.b2u, _ = bytes_to_unicode()

    def bpe(self, word):
        if self.ignore_merges and word in self.vocab:
            return [self.vocab[word]]
        syms = list(word)
        while len(syms) > 1:
            best = None
            for i in range(len(syms) - 1):
                r = self.ranks.get((syms[i], syms[i + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            i = best[1]
            syms[i:i + 2] = [syms[i] + syms[i + 1]]
        return [self.vocab[s] for s in syms]

    def encode(self, text):
        ids = []
        pos = 0
        while pos <= len(text):
            # leftmost-longest special token
            hit = None
            for p in range(pos, len(text)):
                for s, i in self.specials:
                    if text.startswith(s, p):
                        hit = (p, s, i)
                        break
                if hit:
                    break
            end = hit[0] if hit else len(text)
            for piece in self.re.findall(text[pos:end]):
                word = "".join(self.b2u[b] for b in piece.encode("utf-8"))
                ids += self.bpe(word)
            if not hit:
                break
            ids.append(hit[2])
            pos = hit[0] + len(hit[1])
        return ids


def make_fixture(style, corpus, num_merges):
    import regex
    from collections import Counter
    b2u, order = bytes_to_unicode()
    pattern = LLAMA3_PATTERN if style == "llama3" else GPT2_PATTERN
    words = Counter()
    for piece in regex.findall(pattern, corpus):
        words["".join(b2u[b] for b in piece.encode("utf-8"))] += 1
    merges = train_bpe(words, num_merges)
    vocab = {b2u[b]: i for i, b in enumerate(order)}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    if style == "llama3":
        names = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|eot_id|>"]
    else:
        names = ["<|endoftext|>"]
    specials = {}
    added = []
    for n in names:
        specials[n] = len(vocab) + len(specials)
        added.append({"id": specials[n], "content": n, "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": True})
    model = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
             "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "vocab": vocab}
    if style == "llama3":
        model["ignore_merges"] = True
        model["merges"] = [[a, b] for a, b in merges]
        pre = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
        post = {"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                           {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                         {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}},
                         {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>",
                                                         "ids": [specials["<|begin_of_text|>"]],
                                                         "tokens": ["<|begin_of_text|>"]}}}
    else:
        model["merges"] = ["%s %s" % (a, b) for a, b in merges]
        pre = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True}
        post = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}
    tok = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
           "pre_tokenizer": pre, "post_processor": post,
           "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
           "model": model}
    ref = PyBpe(pattern, vocab, merges, specials, style == "llama3")
    return tok, ref


BPE_TEXTS = [
    "", "Hello world", "I'm here, aren't you? I'M SURE WE'LL", "  hello", "hello  ", "123456 7890 12",
    "line one\nline two\r\n\r\nline three\n\n\n", "café naïve résumé", "日本語のテキストです", "emoji 😀🎉👍🏽!",
    "tabs\tand   spaces \t\n end", "<|begin_of_text|>Once upon a time<|end_of_text|>",
    "<|endoftext|>The end.<|endoftext|>", "x<|eot_id|>y<|begin_of_text", "$100.00 + 3.5% = ???",
    "Ünïcödé ÀÉÎÕÜ ßſ 'ſ", "   \n\n   x", "a\u00a0b\u3000c\u2028d",
]


def cmd_bpe(args):
    with open(os.path.join(args.data, "text/tinystories/tinystories_valid_subset.txt"), encoding="utf-8") as f:
        stories = f.read()
    with open(os.path.join(args.data, "text/wikitext-2-raw/wiki.test.raw"), "rb") as f:
        wiki = f.read().decode("utf-8")
    corpus = stories[:60000] + wiki[:30000]
    out_dir = os.path.join(args.repo, "tests/data/tokenizer")
    refs = {"generator": "scripts/reference/make_tokenizer_refs.py bpe", "fixtures": {}}
    for style, fname in (("llama3", "bpe_llama3_style.json"), ("gpt2", "bpe_gpt2_style.json")):
        tok, ref = make_fixture(style, corpus, 300)
        path = os.path.join(out_dir, fname)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(tok, f, ensure_ascii=False, indent=None, separators=(",", ":"))
            f.write("\n")
        print("wrote", path, os.path.getsize(path), "bytes")
        texts = BPE_TEXTS + [stories[:2000], wiki[:2000]]
        refs["fixtures"][style] = {"file": fname, "cases": [{"text": t, "ids": ref.encode(t)} for t in texts]}
    write_json(os.path.join(out_dir, "bpe_refs.json"), refs)


# ---------------------------------------------------------------------------------------------------------
# Unicode tables

def ranges(pred):
    out, start = [], None
    for cp in range(0x110000 + 1):
        inside = cp <= 0x10FFFF and pred(chr(cp))
        if inside and start is None:
            start = cp
        elif not inside and start is not None:
            out.append((start, cp - 1))
            start = None
    return out


def emit_table(name, rs):
    lines = ["const CodepointRange %s[] = {" % name]
    row = []
    for a, b in rs:
        row.append("{0x%X,0x%X}," % (a, b))
        if len(row) == 8:
            lines.append("    " + " ".join(row))
            row = []
    if row:
        lines.append("    " + " ".join(row))
    lines.append("};")
    return "\n".join(lines)


def cmd_unicode_tables(args):
    letters = ranges(lambda c: unicodedata.category(c).startswith("L"))
    numbers = ranges(lambda c: unicodedata.category(c).startswith("N"))
    text = """// Generated by scripts/reference/make_tokenizer_refs.py unicode-tables (Unicode %s); do not edit.
// Code point ranges of the general categories L (\\p{L}) and N (\\p{N}) for the byte-level BPE pre-tokenizer.
#include "tokenizer/unicode_tables.h"

#include <algorithm>
#include <iterator>

namespace qpruner::unicode {

namespace {

struct CodepointRange {
    char32_t first;
    char32_t last;
};

%s

%s

template <std::size_t N>
bool inRanges(const CodepointRange (&table)[N], char32_t cp)
{
    const auto it = std::upper_bound(std::begin(table), std::end(table), cp,
                                     [](char32_t c, const CodepointRange& r) { return c < r.first; });
    return it != std::begin(table) && cp <= std::prev(it)->last;
}

} // namespace

bool isLetter(char32_t cp)
{
    if (cp < 0x80)
        return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    return inRanges(kLetters, cp);
}

bool isNumber(char32_t cp)
{
    if (cp < 0x80)
        return cp >= '0' && cp <= '9';
    return inRanges(kNumbers, cp);
}

bool isWhitespace(char32_t cp)
{
    // The White_Space property, which is what \\s means to Oniguruma and Rust's regex in Unicode mode.
    switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0: case 0x1680:
    case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

} // namespace qpruner::unicode
""" % (unicodedata.unidata_version, emit_table("kLetters", letters), emit_table("kNumbers", numbers))
    path = os.path.join(args.repo, "core/src/tokenizer/unicode_tables.cpp")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print("wrote", path, os.path.getsize(path), "bytes,", len(letters), "letter ranges,", len(numbers), "number ranges")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["spm", "bpe", "unicode-tables"])
    ap.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data"))
    ap.add_argument("--repo", default=REPO)
    args = ap.parse_args()
    args.data = os.path.abspath(args.data)
    {"spm": cmd_spm, "bpe": cmd_bpe, "unicode-tables": cmd_unicode_tables}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
