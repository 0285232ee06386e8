#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""make_score_forced.py - `glm4v score` fixtures checked against transformers by teacher forcing (not generation):
completions that leave HF's greedy path (random tokens), their logprobs and top lists of varying lengths (our top-1
sometimes missing from them), on the moe checkpoint (text) and the dense one (an image). HF runs prompt + completion
in one forward pass (fp32, eager, CPU); per position the logprob of the given token (float64 log_softmax rounded to
float32), its rank (ties by id, torch.argmax's first maximum), top-1 and margin, dlogprob, top-20 membership both
ways and the KL divergence over the shared support, as README.md defines them. Needs torch + transformers.

    python3 tests/golden/make_score_forced.py [OUT_DIR]     (default tests/data/score)
writes forced_cases.jsonl (one case a line, the checkpoint in "ckpt" of forced_expected.json) and
forced_expected.json (HF's numbers per case).
"""
import json, sys, math
import numpy as np, torch
from transformers import (Glm4vForConditionalGeneration, Glm4vMoeForConditionalGeneration, Glm4vProcessor)
from transformers.image_utils import load_image
torch.manual_seed(0)
out_cases, refs, ckpts = [], {}, {}
def run(ckpt, cls, cid, prompt, images, completion_fn, topk=5):
    proc = Glm4vProcessor.from_pretrained(ckpt)
    model = cls.from_pretrained(ckpt, dtype=torch.float32, attn_implementation="eager").eval()
    kw = {"images": [load_image(p) for p in images]} if images else {}
    inp = proc(text=[prompt], return_tensors="pt", **kw)
    ids = inp["input_ids"][0].tolist()
    # greedy first, to build a completion that agrees for a while
    with torch.no_grad():
        g = model.generate(**inp, max_new_tokens=10, min_new_tokens=10, do_sample=False)
    greedy = g[0, len(ids):].tolist()
    comp, their_lp, their_top = completion_fn(greedy)
    full = torch.tensor([ids + comp[:-1]])
    fin = dict(inp); fin["input_ids"] = full; fin["attention_mask"] = torch.ones_like(full)
    for k in ("mm_token_type_ids", "token_type_ids"):
        if k in fin: fin[k] = torch.cat([fin[k], torch.zeros((1, len(comp) - 1), dtype=fin[k].dtype)], 1)
    model.model.rope_deltas = None
    with torch.no_grad():
        logits = model(**fin, use_cache=False).logits[0].double()
    rows = logits[len(ids) - 1:]
    lp = torch.log_softmax(rows, -1).float().double()  # fp64 log_softmax rounded to fp32
    V = lp.shape[1]; pos = []
    for j, t in enumerate(comp):
        x = rows[j]
        order = sorted(range(V), key=lambda i: (-float(x[i]), i))
        rank = order.index(t); top1 = order[0]
        p = {"token": t, "logprob": float(lp[j, t]), "rank": rank, "top1": top1, "top1_logprob": float(lp[j, top1]),
             "margin": float(lp[j, top1] - lp[j, order[1]]), "in_our_topk": rank < 20}
        if their_lp is not None and their_lp[j] is not None: p["dlogprob"] = their_lp[j] - p["logprob"]
        if their_top is not None:
            tt = their_top[j]; tids = [e["token_id"] for e in tt]
            p["ours_in_their_topk"] = top1 in tids
            shared = [i for i in order[:20] if i in tids]
            if shared:
                P = np.array([float(lp[j, i]) for i in shared]); Q = np.array([next(e["logprob"] for e in tt if e["token_id"] == i) for i in shared])
                P = P - np.logaddexp.reduce(P); Q = Q - np.logaddexp.reduce(Q)
                p["kl"] = max(float(np.sum(np.exp(P) * (P - Q))), 0.0)
            else: p["kl"] = None
        pos.append(p)
    case = {"id": cid, "prompt": prompt, "completion_ids": comp}
    ckpts[cid] = ckpt
    if images: case["images"] = images
    if their_lp is not None: case["logprobs"] = their_lp
    if their_top is not None: case["top_logprobs"] = their_top
    out_cases.append(case)
    first = next((j for j, p in enumerate(pos) if p["rank"]), None)
    refs[cid] = {"ckpt": ckpt, "positions": pos, "first_divergence": first, "agree": sum(p["rank"] == 0 for p in pos),
                 "near_ties": sum(1 for p in pos if p["rank"] and p["top1_logprob"] - p["logprob"] <= 1e-3),
                 "prompt_tokens": len(ids)}
    return lp

rng = np.random.default_rng(7)
def compA(greedy):
    comp = greedy[:4] + [int(rng.integers(10, 1000)) for _ in range(3)] + greedy[7:9]
    lps = [-0.5 - 0.1 * k if k % 3 else None for k in range(len(comp))]
    tops = []
    for k in range(len(comp)):
        n = 1 + k % 4
        tops.append([{"token_id": int(i), "logprob": float(-0.3 * (q + 1) - 0.01 * k)} for q, i in enumerate(
            ([greedy[k]] if k < len(greedy) and k % 2 == 0 else []) + [int(i) for i in rng.integers(0, 1000, n)])][:n])
    return comp, lps, tops
run("tests/golden/ckpt/moe", Glm4vMoeForConditionalGeneration, "hf-forced-moe-text",
    "[gMASK]<sop><|user|>\nName three colours of the sea.<|assistant|>\n", None, compA)
def compB(greedy):
    comp = greedy[:2] + [int(rng.integers(10, 1000))] + greedy[3:8]
    return comp, None, None
run("tests/golden/ckpt/dense", Glm4vForConditionalGeneration, "hf-forced-dense-image",
    "[gMASK]<sop><|user|>\n<|begin_of_image|><|image|><|end_of_image|>Is it bright?<|assistant|>\n",
    ["tests/data/images/synth_97x61.png"], compB)
def compC(greedy):
    comp = [int(i) for i in rng.integers(5, 1000, 8)]
    return comp, None, "hf-top"
TOPS = {}
_run = run
def run(ckpt, cls, cid, prompt, images, completion_fn, topk=5):
    """as _run; a completion_fn giving "hf-top" gets their top lists made from HF's own top-n, perturbed"""
    def fn(greedy):
        comp, lps, tops = completion_fn(greedy)
        if tops != "hf-top":
            return comp, lps, tops
        proc = Glm4vProcessor.from_pretrained(ckpt)
        model = cls.from_pretrained(ckpt, dtype=torch.float32, attn_implementation="eager").eval()
        ids = proc(text=[prompt], return_tensors="pt")["input_ids"][0].tolist()
        with torch.no_grad():
            lg = model(input_ids=torch.tensor([ids + comp[:-1]]), use_cache=False).logits[0].double()[len(ids) - 1:]
        lp = torch.log_softmax(lg, -1).float().double().numpy()
        tops = []
        for j in range(len(comp)):
            order = np.lexsort((np.arange(lp.shape[1]), -lp[j]))
            cand = [int(i) for i in order[:3 + j % 6]]
            if j % 3 == 1:
                cand = cand[1:]  # our top-1 missing from their list
            tops.append([{"token_id": i, "logprob": float(lp[j, i] + rng.normal(0, 0.3))} for i in cand])
        return comp, [float(lp[j, t]) + 0.01 * j for j, t in enumerate(comp)], tops
    return _run(ckpt, cls, cid, prompt, images, fn, topk)
run("tests/golden/ckpt/moe", Glm4vMoeForConditionalGeneration, "hf-forced-kl",
    "[gMASK]<sop><|user|>\nWrite a haiku about rain.<|assistant|>\n", None, compC)
out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/score"
with open(out + "/forced_cases.jsonl", "w") as f:
    for c in out_cases: f.write(json.dumps(c) + "\n")
json.dump(refs, open(out + "/forced_expected.json", "w"), indent=None)
print("done", {k: (v["first_divergence"], v["agree"]) for k, v in refs.items()})
