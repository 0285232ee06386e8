#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""make_bf16_cases.py - PyTorch's own bf16 error, the reference for `glm4v --compute bf16` (tests/cli_bf16.sh).

    python3 tests/golden/make_bf16_cases.py [--out tests/golden/bf16] [--cases moe.image dense.image ...]

For each case of make_golden.py (the same tiny checkpoints, prompts and images) runs the transformers prefill twice on
CPU with attn_implementation="eager": the model loaded in float32 (as tests/golden/cases, which it must reproduce
to fp32 rounding; the errors are taken against the golden file) and in torch.bfloat16 (`dtype=torch.bfloat16`: every op of the model in bf16 with HF's own upcasts, the
way a bf16 checkpoint is served with PyTorch). Writes OUT/NAME.safetensors with the bf16 run's `logits`,
`hidden_states.{N}` (after the final norm) and `image_embeds` as float32, and OUT/NAME.limits: `router_flip R`
(MoE: the first prompt position whose routed experts in bf16 differ from fp32 in some layer - the tiny random
checkpoints have router gaps of ~3e-4, which bf16 rounding crosses - else L), then one line per tensor row,
`name row max_abs_error`: max over the row of |HF bf16 - HF fp32|, the error our bf16 mode must not exceed
(tests/cli_bf16.sh compares the positions before the first flip of either side: later ones follow another expert).
Needs torch + transformers 5.x; never needed by the build or CI.
"""
import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_golden as mg  # noqa: E402  (the cases, the checkpoints, the taps)

CASES = ["moe.text", "moe.image", "dense.text", "dense.image"]


def prefill(ckdir, dtype, case):
    """The prefill of one case with the model in dtype: {logits, hidden_states.N, image_embeds} as float32."""
    cfg = json.loads((ckdir / "config.json").read_text())
    cls = mg.Glm4vMoeForConditionalGeneration if cfg["model_type"] == "glm4v_moe" else mg.Glm4vForConditionalGeneration
    model = cls.from_pretrained(ckdir, dtype=dtype, attn_implementation="eager").eval()
    processor = mg.Glm4vProcessor.from_pretrained(ckdir)
    inputs = processor(text=[case["prompt"]], return_tensors="pt", **mg.load_media(case))
    if "pixel_values" in inputs:  # the processor gives float32 pixels; a bf16 model takes them in its dtype
        inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
    taps = mg.Taps(model, modules=True)  # (the router taps: the experts each position chose)
    model.model.rope_deltas = None
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True, use_cache=False)
    t = taps.tensors()
    taps.remove()
    nl = model.config.text_config.num_hidden_layers
    d = {"logits": out.logits[0], f"hidden_states.{nl}": out.hidden_states[-1][0]}
    if "image_embeds" in t:
        d["image_embeds"] = t["image_embeds"]
    experts = [v.sort(dim=-1)[0] for k, v in sorted(t.items()) if k.endswith(".mlp.gate.out2")]
    return {k: v.detach().float().contiguous() for k, v in d.items()}, experts


def first_flip(ea, eb, L):
    """The first prompt position whose routed experts differ in any layer (L when none)."""
    rows = [int(r) for a, b in zip(ea, eb) for r in (a != b).any(-1).nonzero().flatten()]
    return min(rows, default=L)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(mg.ROOT / "tests" / "golden" / "bf16"))
    ap.add_argument("--cases", nargs="*", default=CASES)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    for name in args.cases:
        case = mg.CASES[name]
        ckdir = mg.ROOT / "tests" / "golden" / "ckpt" / case["ckpt"]
        f32, e32 = prefill(ckdir, torch.float32, case)
        gold = load_file(mg.ROOT / "tests" / "golden" / "cases" / f"{name}.safetensors")
        for k, v in f32.items():  # the fp32 run reproduces the golden one to fp32 rounding (torch's threads)
            d = (v - gold[k]).abs().max().item()
            assert d <= 1e-5 * gold[k].abs().max().item(), f"{name}: fp32 prefill vs tests/golden/cases {k}: {d}"
            f32[k] = gold[k]  # the reference the test compares with
        b16, e16 = prefill(ckdir, torch.bfloat16, case)
        L = f32["logits"].shape[0]
        flip = first_flip(e32, e16, L)
        lines = [f"router_flip {flip}"]
        for k in sorted(b16):
            err = (b16[k] - f32[k]).abs().amax(dim=-1)  # per row
            lines += [f"{k} {r} {e:.6e}" for r, e in enumerate(err.tolist())]
            pre = err[:flip].max().item() if k != "image_embeds" else err.max().item()
            print(f"{name}: torch bf16 vs fp32 {k}: max_abs {err.max().item():.4g}, before the first expert flip "
                  f"(row {flip} of {L}) {pre:.4g} (max |fp32| {f32[k].abs().max().item():.4g})")
        save_file(b16, out / f"{name}.safetensors", metadata={
            "generator": f"tests/golden/make_bf16_cases.py {name} (transformers {mg.transformers.__version__}, "
                         f"torch {torch.__version__}, dtype=torch.bfloat16)"})
        (out / f"{name}.limits").write_text("".join(x + "\n" for x in lines))


if __name__ == "__main__":
    main()
