#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""make_score_cases.py - the `glm4v score` fixtures (tests/data/score/), made from HuggingFace's own greedy
generations in tests/golden/cases (make_golden.py: transformers, fp32, the `moe` checkpoint).

    python3 tests/golden/make_score_cases.py [--out tests/data/score]

Writes
- hf_cases.jsonl: HF's greedy completions with HF's logprobs (log_softmax of HF's generate scores, in float64,
  rounded to float32) and HF's top-5, as the cases a verifier writes: `prompt` + `images`, `input_ids`, and altered
  copies (a token swapped at a known position; logprobs shifted by a constant);
- vllm_response.json: the moe.image generation as a logged vLLM chat.completion with `logprobs: true,
  top_logprobs: 5` (token strings as HF's tokenizer decodes them, their UTF-8 `bytes`; a token whose text is not
  its bytes (a partial UTF-8 character) carries its raw bytes, as llama-server and OpenAI give them; every third
  token in vLLM's --return-tokens-as-token-ids form "token_id:N"), and vllm_cases.jsonl with the case lines around it
  (one as logged, one whose tokens cannot be mapped one to one, one with the vocabulary's own token strings);
- expected.json: what the tests assert (positions, ids, the shift) - all from HF's outputs, none from glm4v.c.
Needs numpy and tokenizers (installed with transformers); never needed by the build.
"""
import argparse
import json
import os
import struct
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests/golden/cases"
CKPT = "tests/golden/ckpt/moe"


def read_st(path):
    """safetensors -> {name: ndarray}"""
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    out = {}
    for k, m in h.items():
        if k == "__metadata__":
            continue
        s, e = m["data_offsets"]
        dt = {"F32": np.float32, "I64": np.int64}[m["dtype"]]
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=dt).reshape(m["shape"])
    return out


def log_softmax(row):
    """torch.log_softmax in float64, rounded to float32 (what a float32 backend reports)"""
    x = row.astype(np.float64)
    m = x.max()
    return (x - (m + np.log(np.exp(x - m).sum()))).astype(np.float32).astype(np.float64)


def bytes_to_unicode():
    """GPT-2's byte <-> char table (tokenizers ByteLevel)"""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "tests/data/score"))
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer.from_file(str(ROOT / CKPT / "tokenizer.json"))
    byte_of = bytes_to_unicode()
    specials = {t.content for t in tok.get_added_tokens_decoder().values()}

    def token_bytes(i):
        s = tok.id_to_token(i)
        if s is None:  # an id of the model's padded vocabulary that the tokenizer does not have
            return None
        if s in specials:
            return s.encode()
        return bytes(byte_of[c] for c in s)

    def text_of(i):
        return tok.decode([i], skip_special_tokens=False)

    expected = {}
    # HF's greedy generations: ids, logprobs, top-5
    hf = {}
    for name in ("moe.image", "moe.text"):
        t = read_st(CASES / f"{name}.safetensors")
        meta = json.load(open(CASES / f"{name}.json"))
        gen = t["generated_ids"].tolist()
        lps, tops = [], []
        for row, i in zip(t["generated_logits"], gen):
            lp = log_softmax(row)
            lps.append(float(lp[i]))
            top = np.argsort(-lp, kind="stable")[:5]
            tops.append([{"token_id": int(k), "logprob": float(lp[k])} for k in top])
        hf[name] = dict(meta=meta, ids=t["input_ids"].tolist(), gen=gen, lp=lps, top=tops, logits=t["generated_logits"])

    lines = []
    im = hf["moe.image"]
    lines.append({"id": "hf-image", "prompt": im["meta"]["prompt"], "images": im["meta"]["images"],
                  "completion_ids": im["gen"], "logprobs": im["lp"], "top_logprobs": im["top"]})
    tx = hf["moe.text"]
    lines.append({"id": "hf-text-ids", "input_ids": tx["ids"], "completion_ids": tx["gen"], "logprobs": tx["lp"]})
    # a token swapped at position k: HF's rank >= 10 token there (the first such id)
    k = 3
    lp3 = log_softmax(im["logits"][k])
    swap = int(np.argsort(-lp3, kind="stable")[10])
    sw = list(im["gen"])
    sw[k] = swap
    lines.append({"id": "hf-image-swap3", "prompt": im["meta"]["prompt"], "images": im["meta"]["images"],
                  "completion_ids": sw})
    expected["hf-image-swap3"] = {"position": k, "theirs": swap, "ours": im["gen"][k]}
    # logprobs shifted by a constant
    shift = 0.25
    lines.append({"id": "hf-text-shift", "input_ids": tx["ids"], "completion_ids": tx["gen"],
                  "logprobs": [v + shift for v in tx["lp"]]})
    expected["hf-text-shift"] = {"shift": shift}
    expected["hf"] = {"hf-image": len(im["gen"]), "hf-text-ids": len(tx["gen"])}
    with open(out / "hf_cases.jsonl", "w") as f:
        for l in lines:
            f.write(json.dumps(l) + "\n")

    # a vLLM chat.completion with logprobs for moe.image
    content = []
    for j, (i, lp, top) in enumerate(zip(im["gen"], im["lp"], im["top"])):
        def entry(i, lp, j=j):
            s = text_of(i)
            b = token_bytes(i)
            if j % 3 == 2 or b is None:
                return {"token": f"token_id:{i}", "logprob": lp, "bytes": list(s.encode())}
            return {"token": s, "logprob": lp, "bytes": list(b)}
        e = entry(i, lp)
        e["top_logprobs"] = [entry(t["token_id"], t["logprob"]) for t in top]
        content.append(e)
    text = tok.decode(im["gen"], skip_special_tokens=True)
    resp = {"id": "chatcmpl-4f1c2e0a9b7d4c65", "object": "chat.completion", "created": 1767225600,
            "model": "tiny-glm4v-moe",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "tool_calls": []},
                         "logprobs": {"content": content}, "finish_reason": "length", "stop_reason": None}],
            "usage": {"prompt_tokens": im["meta"]["input_len"], "completion_tokens": len(im["gen"]),
                      "total_tokens": im["meta"]["input_len"] + len(im["gen"])}}
    with open(out / "vllm_response.json", "w") as f:
        json.dump(resp, f, indent=1, ensure_ascii=False)
        f.write("\n")
    # two tokens logged as one entry (a backend that merged them): not one of our tokens -> re-tokenized
    merged = json.loads(json.dumps(resp))
    c = merged["choices"][0]["logprobs"]["content"]
    a0, a1 = c[1], c[2]
    b0 = token_bytes(im["gen"][1]) + token_bytes(im["gen"][2])
    c[1:3] = [{"token": b0.decode(errors="replace"), "logprob": a0["logprob"] + a1["logprob"], "bytes": list(b0),
               "top_logprobs": []}]
    # a backend that logs the vocabulary's own strings (convert_ids_to_tokens: "Ġde"), no bytes
    raw = json.loads(json.dumps(resp))
    for e, i in zip(raw["choices"][0]["logprobs"]["content"], im["gen"]):
        e.pop("bytes", None)
        e["top_logprobs"] = []
        if not e["token"].startswith("token_id:") and tok.id_to_token(i) is not None:
            e["token"] = tok.id_to_token(i)
    with open(out / "vllm_cases.jsonl", "w") as f:
        f.write(json.dumps({"id": "vllm-image", "prompt": im["meta"]["prompt"], "images": im["meta"]["images"],
                            "response": resp}) + "\n")
        f.write(json.dumps({"id": "vllm-merged", "prompt": im["meta"]["prompt"], "images": im["meta"]["images"],
                            "response": merged}) + "\n")
        f.write(json.dumps({"id": "vllm-vocab-strings", "prompt": im["meta"]["prompt"], "images": im["meta"]["images"],
                            "response": raw}) + "\n")
    expected["vllm-image"] = {"ids": im["gen"], "logprobs": im["lp"]}
    with open(out / "expected.json", "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    print("wrote", ", ".join(sorted(os.listdir(out))))


if __name__ == "__main__":
    main()
