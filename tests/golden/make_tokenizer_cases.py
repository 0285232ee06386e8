#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""make_tokenizer_cases.py - reference tokenizations from HuggingFace `tokenizers` for tests/test_tokenizer.c.

Encodes a varied set of strings with weights/tiny-glm4v-moe/tokenizer.json and with a few variants of it (extra added
tokens with lstrip/rstrip/single_word/normalized flags, the GPT-2 ByteLevel pre-tokenizer, other Split behaviours,
ignore_merges, legacy "a b" merges, no pre-tokenizer/decoder, an unk token) and writes
tests/data/tokenizer_cases_extra.json. Each variant is stored as a patch of the tiny tokenizer.json that the C test
applies before loading. Run from the repository root:  python3 tests/golden/make_tokenizer_cases.py
"""
import json
import random
import sys

import tokenizers
from tokenizers import Tokenizer

SRC = "weights/tiny-glm4v-moe/tokenizer.json"
OUT = "tests/data/tokenizer_cases_extra.json"

BASE_TEXTS = [
    # unicode
    "你好，世界", "日本語のテキストです。カタカナ", "한국어 문장입니다", "Привет, мир! Ёлка", "Γειά σου Κόσμε",
    "مرحبا بالعالم ١٢٣", "שלום עולם", "नमस्ते दुनिया", "สวัสดีครับ", "café naïve résumé Ångström",
    "e\u0301 a\u0308 Z\u0324\u0354\u0367\u0311\u0313", "\u0915\u094d\u0937", "👨‍👩‍👧‍👦 family 👍🏿 🏳️‍🌈 🇯🇵🇺🇸",
    "😀😃😄😁", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛", "\ufeffBOM at start", "zero\u200bwidth\u200cjoin\u200d", "ﬁ ligature Ⅻ ½ ①②",
    # digits
    "1234567", "12345678901234567890", "3.14159 2.71828", "1,000,000.00", "v1.2.3-rc4", "٣٤٥٦٧ ۱۲۳", "a1b22c333d4444",
    # contractions
    "DON'T", "We'Ll", "you'RE I'M they'VE she'D it'S", "'s 't 're 've 'm 'll 'd", "rock'n'roll O'Neil",
    "it’s curly", "''quoted''", "x'S y'sS z'LLl", "it'\u017f", "\u212a'\u212a",
    # whitespace
    "   ", "\t\t", "a  b", "a\t b", "\r\n", "line1\r\nline2\r\n", "end   ", "   start", "\n\n\n", " \n ", "a \n\n b",
    "\u3000ideographic\u3000space", "nb\u00a0sp", "nel\u0085nel", "ls\u2028ps\u2029", "\f\vctl", "tab\tseparated\tvalues",
    "  \t  \n  \t", "trailing newline\n", " ", "\r", "x\r\r\ny", "a\u2003\u2003b",
    # special tokens in text
    "Hello<|user|>World", "<|user|><|assistant|>", "[gMASK]<sop><|system|>\nYou are a helpful assistant",
    "<|user", "<|user|", "<|<|user|>|>", "<think>reasoning</think>answer", "/nothink", "text/nothink", " /nothink",
    "<|image|><|image|><|image|>", "<|begin_of_image|><|image|><|end_of_image|>Describe", "[MASK][gMASK][sMASK]",
    "[gMASK", "<|endoftext|>", "<|endoftext|", "< |user|>", "<<sop>>", "x<eop>y", " <|observation|> ",
    "<|begin_of_box|>[[1, 2, 3, 4]]<|end_of_box|>", "<tool_call>f\n<arg_key>k</arg_key>\n<arg_value>v</arg_value>\n</tool_call>",
    "<|user|>\n<|begin_of_video|><|video|><|end_of_video|>What happens?<|assistant|>\n<think></think>",
    # code
    "def f(x):\n    return x ** 2  # square\n",
    "int main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n",
    '{"key": [1, 2.5, "three"], "nested": {"a": null}}',
    "<div class=\"x\">&amp;&lt;</div>", "for i in $(seq 1 10); do echo \"$i\"; done | grep -v 3 >> out.txt",
    "x+=1;y-=2;z*=3;w/=4;v%=5;u**=6;t//=7", "a->b->c :: d => e === f !== g",
    "    if (a && b || !c) { return -1; }", "```python\nprint('hi')\n```",
    # punctuation runs
    "!!!???...", "—–-‒", "«quotes» „low“ 「カギ」", "Ω≈ç√∫˜µ≤≥÷", "@#$%^&*()_+-=[]{}|;':\",./<>?", "~~~```",
]

LONG = ("The quick brown fox jumps over the lazy dog. " * 3 + "Pack my box with five dozen liquor jugs! 1234567890 "
        "日本語も少し。 emoji 🚀🔥 and tabs\t\tand newlines\n\n" + "It's a long text, isn't it? " * 4 +
        "<|user|>\nsecond turn<|assistant|>\n<think></think>\nanswer.\n") * 8


def random_texts(rng, n):
    pool = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") + list(" \t\n\r") * 4 +
            list("'\"!?.,;:-_/\\()[]{}<>|@#$%^&*+=~`") + ["'s", "'LL", "'d", "é", "ß", "中", "文", "😀", "👍🏽",
            "\u0301", "\u00a0", "\u0085", "\u3000", "١", "½", "<|user|>", "<|", "|>", "[gMASK]", "<sop>", "/nothink",
            "<think>", "</think>", "  ", "\r\n"])
    return ["".join(rng.choice(pool) for _ in range(rng.randint(0, 40))) for _ in range(n)]


def added(content, **kw):
    tok = {"id": -1, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
           "normalized": True, "special": False}
    tok.update(kw)
    return tok


def apply_patch(base, patch):
    d = json.loads(json.dumps(base))
    for k, v in patch.items():
        if k == "added_tokens_append":
            d["added_tokens"].extend(json.loads(json.dumps(v)))
        elif k == "model":
            d["model"].update(v)
        elif k == "merges_keep":
            d["model"]["merges"] = d["model"]["merges"][:v]
        elif k == "merges_legacy":
            d["model"]["merges"] = [a + " " + b for a, b in d["model"]["merges"]]
        else:
            d[k] = v
    return d


def fix_added_ids(base, patch):
    """Give the appended added tokens the ids `tokenizers` assigns (it ignores the ids in the file)."""
    toks = patch.get("added_tokens_append")
    if not toks:
        return
    for t in toks:
        t["id"] = 0
    tk = Tokenizer.from_str(json.dumps(apply_patch(base, patch)))
    for t in toks:
        t["id"] = tk.token_to_id(t["content"])


def run_variant(base, name, patch, texts, rng, ndecode=0):
    fix_added_ids(base, patch)
    tk = Tokenizer.from_str(json.dumps(apply_patch(base, patch)))
    cases = []
    for s in texts:
        ids = tk.encode(s, add_special_tokens=False).ids
        cases.append({"text": s, "ids": ids, "decoded": tk.decode(ids, skip_special_tokens=False),
                      "decoded_skip_special": tk.decode(ids, skip_special_tokens=True)})
    dec = []
    size = tk.get_vocab_size(with_added_tokens=True)
    for _ in range(ndecode):  # random id sequences: split multi-byte chars, invalid UTF-8, specials, unknown ids
        ids = [rng.randrange(size + 3) for _ in range(rng.randint(1, 10))]
        dec.append({"ids": ids, "decoded": tk.decode(ids, skip_special_tokens=False),
                    "decoded_skip_special": tk.decode(ids, skip_special_tokens=True)})
    return {"name": name, "patch": patch, "cases": cases, "decode_cases": dec}


def main():
    rng = random.Random(1234)
    base = json.load(open(SRC, encoding="utf-8"))
    short = [s for s in BASE_TEXTS if len(s) < 60][::2] + random_texts(rng, 15)
    variants = []
    variants.append(run_variant(base, "tiny", {}, BASE_TEXTS + [LONG] + random_texts(rng, 120), rng, 150))

    flags = {"added_tokens_append": [
        added("<mask>", lstrip=True, rstrip=True, special=True, normalized=False),
        added("ony", single_word=True),
        added("hello", normalized=True),
        added("hell", normalized=False),
        added("the", normalized=False),  # already in the vocab: takes the vocab id
        added("naï", single_word=True, normalized=False),
        added("\n\n", rstrip=True),
        added("ab", single_word=True, lstrip=True),
        added("<|user|>", special=True, normalized=False),  # duplicate of an existing special token
        added("|>x", special=False, normalized=False),
    ]}
    flag_texts = ["<mask> My name <mask> A<mask> <mask>ony <mask>", "Hi <mask> there\t<mask>\t<mask>\u2000",
                  "hello world hellothere shell", "ony bony ony_ ony1 ony. (ony) ony\u0301 \u00e9ony",
                  "x ab abc ab_ ab\u00a0ab  ab", "naï naïve naï\u0301 anaï", "ony\u200d \u200dony ony\u00b2 \u00b2ony \u216bony ony\u0661 ony\u203f", "a\n\n\n  b\n\n", "the other theme",
                  "<|user|>x <|user|>|>x", "  <mask>  <mask><mask>  ", "", "plain text without tokens"]
    variants.append(run_variant(base, "added_flags", flags, flag_texts + short, rng))

    bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}
    variants.append(run_variant(base, "gpt2_bytelevel", {"pre_tokenizer": {
        "type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}},
        short + ["hello<|user|>world <|user|> x", " leading", "nel\u0085 x"], rng))

    def split(pattern, behavior, invert=False, literal=False):
        return {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {("String" if literal else "Regex"): pattern}, "behavior": behavior,
             "invert": invert}, bl]}}

    split_texts = ["a b  c   d", "abc123def4567", "hello world, this is aeiou", "  x  y  ", "a\nb\n c\n\nd",
                   "nel\u0085x\u00a0y\u2028z\u3000w", "word_1 wörd-2 \u0301mark \u200d\u0661x\u00b2", "",
                   "<|user|> a <|user|>b", "cafe 0xBEEF deadbeef"]
    for i, sp in enumerate([split(" ", "Removed", literal=True), split("\\d", "MergedWithPrevious"),
                            split("[aeiou]", "MergedWithNext"), split("\\s+", "Contiguous", invert=True),
                            split("a*", "Isolated"), split("\\w+", "Removed", invert=True),
                            split("^.", "Isolated"), split("\\s", "MergedWithNext"),
                            split("\\S+", "Isolated"), split("\\h+", "Removed"), split("\\s", "Removed"),
                            split("\\W", "Removed")]):
        variants.append(run_variant(base, "split_%d" % i, sp, split_texts, rng))

    variants.append(run_variant(base, "ignore_merges", {"model": {"ignore_merges": True}}, short, rng))
    # with half the merges, vocab words are no longer reachable by merging: ignore_merges then matters
    words = ["hello world", "the quick brown fox", "international", "information", "function", " return x"]
    for ig in (False, True):
        variants.append(run_variant(base, "merges_half_ignore_%d" % ig,
                                    {"model": {"ignore_merges": ig}, "merges_keep": 384}, words + short[:20], rng))
    variants.append(run_variant(base, "legacy_merges", {"merges_legacy": True}, short, rng, 10))
    variants.append(run_variant(base, "no_pretok_no_decoder", {"pre_tokenizer": None, "decoder": None},
                                ["hello world", "héllo wörld", "abc  def", "x<|user|>y"], rng, 10))
    for fuse in (False, True):
        variants.append(run_variant(base, "unk_fuse_%d" % fuse,
                                    {"pre_tokenizer": None, "model": {"unk_token": "!", "fuse_unk": fuse}},
                                    ["héllo", "ééé x ßß", "中文abc", "plain"], rng))

    # invalid UTF-8 input: the C encoder replaces it by U+FFFD (as bytes.decode("utf-8", "replace"))
    tk = Tokenizer.from_str(json.dumps(base))
    bad = []
    for raw in [b"abc\xff def", b"\xe4\xb8", b"\xe4\xb8x\xe4\xb8\xad", b"\xc0\xaf", b"\xed\xa0\x80 surrogate",
                b"\xf4\x90\x80\x80", b"\x80\x80\x80", b"ok\xf0\x9f\x98", b"<|user|>\xfe<|user|>"]:
        txt = raw.decode("utf-8", "replace")
        bad.append({"hex": raw.hex(), "ids": tk.encode(txt, add_special_tokens=False).ids})

    out = {"tokenizers_version": tokenizers.__version__, "source": SRC, "variants": variants, "invalid_utf8": bad}
    text = json.dumps(out, ensure_ascii=False, separators=(",", ":"))
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)
    print("wrote %s (%d bytes, %d variants, %d cases)" % (OUT, len(text.encode()), len(variants),
          sum(len(v["cases"]) + len(v["decode_cases"]) for v in variants)), file=sys.stderr)


if __name__ == "__main__":
    main()
