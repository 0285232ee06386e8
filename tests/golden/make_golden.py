#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""make_golden.py - HuggingFace reference outputs for glm4v.c (tests/golden/README.md).

    python3 tests/golden/make_golden.py [--out tests/golden] [--cases moe.text dense.* ...] [--list]
    python3 tests/golden/make_golden.py --cases realdims [--realdims-dir build/realdims]

1. builds tiny random checkpoints (fixed seeds, HF `save_pretrained`, bf16 safetensors) into OUT/ckpt/NAME/:
   moe, dense (the dims of weights/tiny-glm4v-*), moe-var, dense-var (other dims) and moe-released (the moe weights
   in the released GLM-4.5V layout: 4.57-style config.json, 2 shards + index, F32 router bias, separate
   preprocessor configs, an unused MTP-like layer 3);
2. runs transformers (CPU, fp32, attn_implementation="eager"; the bf16 weights upcast) on each case's raw prompt
   (chat layout written by hand, special tokens as text) and writes OUT/cases/NAME.safetensors with our dump names
   (below) and OUT/cases/NAME.json (prompt, inputs, greedy continuation, margins, versions);
3. `realdims` (only when named): builds tools/synth_ckpt, writes the GLM-4.5V-dimension checkpoint with
   `--preset realdims --seed 1`, runs HF on it and writes OUT/realdims/realdims.image.{safetensors,json,prompt.txt}.
Needs torch + transformers 5.x + torchvision + pillow + safetensors; never needed by the build or CI.

Dump tensor names (our `--dump FILE` safetensors; HF-compatible meaning). Shapes without a batch dimension.
Always written:
- `input_ids` I64 [L]; `position_ids` I64 [3, L] (M-RoPE rows t, h, w)
- `hidden_states.{i}` F32 [L, H] for i = 0..num_layers (0 = embeddings after the image scatter, i = output of decoder
  layer i, the last one = after the final norm, as HF's output_hidden_states)
- `logits` F32 [L, V] for every prompt position
- `generated_ids` I64 [n]; `generated_logits` F32 [n, V] (raw logits that chose each generated token = HF generate's
  scores for greedy)
- with images: `pixel_values` F32 [P, 1176], `image_grid_thw` I64 [n_images, 3]; with a video: `pixel_values_videos`
  F32 [P, 1176], `video_grid_thw` I64 [n_videos, 3]; with either: `image_embeds` F32 [N, H] (merger output for every
  image and video frame in prompt order = HF `model.visual` / `model.visual.merger` output concatenated)
Module taps (HF module paths, output of the module's forward; written too, they are small on tiny models):
- `model.visual.patch_embed` [P, Hv], `model.visual.embeddings` [P, Hv] (after post_conv_layernorm + position
  embedding), `model.visual.blocks.{b}` [P, Hv], `model.visual.post_layernorm` [P, Hv], `model.visual.downsample` [N, out]
- `model.language_model.layers.{i}.self_attn` [L, H] (o_proj output), `model.language_model.layers.{i}.mlp` [L, H]
- MoE layers: `model.language_model.layers.{i}.mlp.gate.out0` F32 [L, E] router logits, `.out1` F32 [L, k] top-k
  weights (after normalisation and routed_scaling_factor), `.out2` I64 [L, k] top-k expert ids (order not significant)
The HF fixtures in tests/data/golden (made by a different script) use HF-style names: `input.input_ids` [1, L],
`hook.position_ids` [3, 1, L], `hook.model.visual.merger`, `generate.ids`, `generate.scores`, ... with a leading
batch dimension of 1 in places.
Extra (this script): `generated_margin` F32 [n] = top-1 minus top-2 of each generated_logits row.
"""
import argparse
import fnmatch
import gc
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import transformers
from transformers import (Glm4vConfig, Glm4vForConditionalGeneration, Glm4vMoeConfig,
                          Glm4vMoeForConditionalGeneration, Glm4vProcessor)
from transformers.video_utils import VideoMetadata

ROOT = Path(__file__).resolve().parents[2]
TOKENIZER_DIR = ROOT / "weights" / "tiny-glm4v-moe"  # tokenizer.json: 1088 ids, GLM specials at 1024..1059
N_GEN = 12        # greedy tokens per tiny case
N_GEN_REALDIMS = 4
INIT_STD = 0.06   # std of the random Linear/Embedding weights of the tiny checkpoints (as the hf-golden ones)

# special token ids of the tiny tokenizer
TOKEN_IDS = dict(image_token_id=1058, video_token_id=1059, image_start_token_id=1034, image_end_token_id=1035,
                 video_start_token_id=1036, video_end_token_id=1037)
EOS_RELEASED = [1024, 1031, 1033]  # <|endoftext|> <|user|> <|observation|> (GLM-4.5V's eos set, tiny ids)

# ------------------------------------------------------------------------------------------------------------------
# checkpoints


def vision_cfg(depth, hidden, heads, out, merger, image_size, attention_bias=False, eps=1e-5):
    return dict(depth=depth, hidden_size=hidden, num_heads=heads, out_hidden_size=out, intermediate_size=merger,
                image_size=image_size, patch_size=14, spatial_merge_size=2, temporal_patch_size=2, in_channels=3,
                hidden_act="silu", attention_bias=attention_bias, rms_norm_eps=eps, initializer_range=INIT_STD)


def rope(mrope, theta=10000.0, partial=0.5):
    return dict(rope_type="default", rope_theta=theta, partial_rotary_factor=partial, mrope_section=mrope)


CKPTS = {
    # = weights/tiny-glm4v-moe dims (hf-golden tiny-glm4v-moe), new random weights
    "moe": dict(arch="moe", seed=101, text=dict(
        vocab_size=1088, hidden_size=128, intermediate_size=256, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, attention_bias=True, rope_parameters=rope([2, 3, 3]), max_position_embeddings=4096,
        rms_norm_eps=1e-5, moe_intermediate_size=32, n_routed_experts=8, num_experts_per_tok=2, n_shared_experts=1,
        n_group=2, topk_group=1, routed_scaling_factor=1.5, first_k_dense_replace=1, norm_topk_prob=True,
        initializer_range=INIT_STD),
        vision=vision_cfg(2, 64, 4, 128, 96, 336)),
    # = weights/tiny-glm4v-dense dims
    "dense": dict(arch="dense", seed=102, text=dict(
        vocab_size=1088, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, rope_parameters=rope([2, 3, 3]), max_position_embeddings=4096, rms_norm_eps=1e-5,
        initializer_range=INIT_STD),
        vision=vision_cfg(2, 64, 4, 128, 96, 336)),
    # MoE with head_dim (32) != hidden/heads (24), 16 experts in 4 groups (2 kept), top-4, 2 shared experts,
    # 2 dense layers of 4, scaling 2.5, a 4-chunk mrope_section, rope_theta 20000, eps 1e-6;
    # vision head_dim 48, qkv bias, 16x16 position table (image_size 224), merger width 80
    "moe-var": dict(arch="moe", seed=103, text=dict(
        vocab_size=1088, hidden_size=96, intermediate_size=160, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, head_dim=32, attention_bias=True, rope_parameters=rope([1, 3, 2, 2], theta=20000.0),
        max_position_embeddings=4096, rms_norm_eps=1e-6, moe_intermediate_size=24, n_routed_experts=16,
        num_experts_per_tok=4, n_shared_experts=2, n_group=4, topk_group=2, routed_scaling_factor=2.5,
        first_k_dense_replace=2, norm_topk_prob=True, initializer_range=INIT_STD),
        vision=vision_cfg(2, 96, 2, 96, 80, 224, attention_bias=True, eps=1e-6)),
    # dense with hidden 192 / 6 heads / 3 kv heads (head_dim 32), 3 layers, mrope [4,2,2];
    # vision hidden 144 / 3 heads (head_dim 48), 3 blocks, 8x8 position table (image_size 112: images upsample it)
    "dense-var": dict(arch="dense", seed=104, text=dict(
        vocab_size=1088, hidden_size=192, intermediate_size=320, num_hidden_layers=3, num_attention_heads=6,
        num_key_value_heads=3, rope_parameters=rope([4, 2, 2]), max_position_embeddings=4096, rms_norm_eps=1e-5,
        initializer_range=INIT_STD),
        vision=vision_cfg(3, 144, 3, 192, 224, 112)),
}
CKPT_ORDER = ["moe", "dense", "moe-var", "dense-var", "moe-released"]


def synth_tensor(name, shape, seed):
    """Deterministic value of one tensor (numpy PCG64 seeded by the checkpoint seed and the tensor name)."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    module, leaf = name.rsplit(".", 1)
    if leaf == "e_score_correction_bias":
        v = rng.normal(0.0, 0.1, shape)                   # router bias: comparable to the sigmoid score spread
    elif "norm" in module.rsplit(".", 1)[-1] and leaf == "weight":
        v = 1.0 + rng.uniform(-0.2, 0.2, shape)           # every RMSNorm/LayerNorm weight: 1 +- 0.2
    elif leaf == "bias":
        v = rng.normal(0.0, 0.05, shape)                  # q/k/v, patch embed, downsample, LayerNorm, qkv biases
    else:
        v = rng.normal(0.0, INIT_STD, shape)
    return torch.from_numpy(v.astype(np.float32))


def model_classes(arch):
    return (Glm4vMoeConfig, Glm4vMoeForConditionalGeneration) if arch == "moe" else \
        (Glm4vConfig, Glm4vForConditionalGeneration)


def save_processor(dst):
    """processor_config.json (+ tokenizer files) as transformers 5.x writes them; tokenizer.json copied verbatim."""
    proc = Glm4vProcessor.from_pretrained(TOKENIZER_DIR)
    proc.save_pretrained(dst)
    shutil.copyfile(TOKENIZER_DIR / "tokenizer.json", dst / "tokenizer.json")
    shutil.copyfile(TOKENIZER_DIR / "tokenizer_config.json", dst / "tokenizer_config.json")
    for extra in ("chat_template.jinja", "chat_template.json"):  # raw prompts only; keep the folder minimal
        if (dst / extra).exists():
            (dst / extra).unlink()


def build_ckpt(name, ckroot):
    spec = CKPTS[name]
    dst = ckroot / name
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    cfg_cls, model_cls = model_classes(spec["arch"])
    config = cfg_cls(text_config=dict(spec["text"]), vision_config=dict(spec["vision"]), tie_word_embeddings=False,
                     **TOKEN_IDS)
    torch.manual_seed(0)
    model = model_cls(config)
    sd = {k: synth_tensor(k, tuple(v.shape), spec["seed"]) for k, v in model.state_dict().items()}
    model.load_state_dict(sd, strict=True)
    model = model.to(torch.bfloat16)
    model.config.dtype = "bfloat16"
    model.save_pretrained(dst)
    save_processor(dst)
    print(f"checkpoint {name}: {sum(v.numel() for v in sd.values())} params -> {dst.relative_to(ROOT)}")


def released_config(moe_dir):
    """config.json of the released layout (transformers 4.57 style) with the moe checkpoint's values."""
    c = json.loads((moe_dir / "config.json").read_text())
    t, v = c["text_config"], c["vision_config"]
    rp = t["rope_parameters"]
    text = dict(
        attention_bias=True, attention_dropout=0.0, eos_token_id=EOS_RELEASED, first_k_dense_replace=t["first_k_dense_replace"],
        head_dim=t["hidden_size"] // t["num_attention_heads"], hidden_act="silu", hidden_size=t["hidden_size"],
        image_end_token_id=TOKEN_IDS["image_end_token_id"], image_start_token_id=TOKEN_IDS["image_start_token_id"],
        image_token_id=TOKEN_IDS["image_token_id"], initializer_range=t["initializer_range"],
        intermediate_size=t["intermediate_size"], max_position_embeddings=t["max_position_embeddings"],
        model_type="glm4v_moe_text", moe_intermediate_size=t["moe_intermediate_size"], n_group=t["n_group"],
        n_routed_experts=t["n_routed_experts"], n_shared_experts=t["n_shared_experts"],
        norm_topk_prob=t["norm_topk_prob"], num_attention_heads=t["num_attention_heads"],
        num_experts_per_tok=t["num_experts_per_tok"], num_hidden_layers=t["num_hidden_layers"],
        num_key_value_heads=t["num_key_value_heads"], pad_token_id=EOS_RELEASED[0],
        partial_rotary_factor=rp["partial_rotary_factor"], rms_norm_eps=t["rms_norm_eps"],
        rope_scaling={"rope_type": "default", "mrope_section": rp["mrope_section"]}, rope_theta=rp["rope_theta"],
        routed_scaling_factor=t["routed_scaling_factor"], tie_word_embeddings=False, topk_group=t["topk_group"],
        torch_dtype="bfloat16", use_cache=True, use_qk_norm=False, video_end_token_id=TOKEN_IDS["video_end_token_id"],
        video_start_token_id=TOKEN_IDS["video_start_token_id"], video_token_id=TOKEN_IDS["video_token_id"],
        vocab_size=t["vocab_size"])
    vision = {k: v[k] for k in ("attention_bias", "attention_dropout", "depth", "hidden_act", "hidden_size",
                                "image_size", "in_channels", "initializer_range", "intermediate_size", "num_heads",
                                "out_hidden_size", "patch_size", "rms_norm_eps", "spatial_merge_size",
                                "temporal_patch_size")}
    vision["model_type"] = "glm4v_moe"
    top = dict(architectures=["Glm4vMoeForConditionalGeneration"], model_type="glm4v_moe", text_config=text,
               vision_config=vision, **{k: TOKEN_IDS[k] for k in sorted(TOKEN_IDS)}, tie_word_embeddings=False,
               torch_dtype="bfloat16", transformers_version="4.57.1")
    return top


def build_released(ckroot):
    """moe weights in the released GLM-4.5V layout (see module docstring); returns the folder."""
    src, dst = ckroot / "moe", ckroot / "moe-released"
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    w = load_file(src / "model.safetensors")
    for k in list(w):
        if k.endswith("e_score_correction_bias"):
            w[k] = w[k].float()  # released checkpoints store the router bias as F32 (bf16 values, exact)
    # an unused layer after the last one, shaped like GLM-4.5V's MTP layer 46 (5.x never loads it)
    cfg = json.loads((src / "config.json").read_text())["text_config"]
    nl, H = cfg["num_hidden_layers"], cfg["hidden_size"]
    mtp = f"model.language_model.layers.{nl}."
    layer1 = "model.language_model.layers.1."  # an MoE layer: copy its names/shapes
    extra = {mtp + k[len(layer1):]: v for k, v in w.items() if k.startswith(layer1)}
    extra[mtp + "eh_proj.weight"] = torch.empty(H, 2 * H)
    for n in ("enorm.weight", "hnorm.weight", "shared_head.norm.weight"):
        extra[mtp + n] = torch.empty(H)
    for k, v in extra.items():
        t = synth_tensor(k, tuple(v.shape), CKPTS["moe"]["seed"] + 1000)
        w[k] = t if k.endswith("e_score_correction_bias") else t.to(torch.bfloat16)
    # two shards: text embeddings + layers 0..1 | everything else (as real shards, in model order)
    first = lambda k: k.startswith("model.language_model.embed_tokens") or any(
        k.startswith(f"model.language_model.layers.{i}.") for i in (0, 1))
    shards = [{k: w[k].contiguous() for k in sorted(w) if first(k)}, {k: w[k].contiguous() for k in sorted(w) if not first(k)}]
    weight_map, total = {}, 0
    for i, part in enumerate(shards):
        fn = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file(part, dst / fn, metadata={"format": "pt"})
        for k, v in part.items():
            weight_map[k] = fn
            total += v.numel() * v.element_size()
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (dst / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    (dst / "config.json").write_text(json.dumps(released_config(src), indent=2) + "\n")
    gen = {"_from_model_config": True, "eos_token_id": EOS_RELEASED, "pad_token_id": EOS_RELEASED[0],
           "transformers_version": "4.57.1"}
    (dst / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
    proc = json.loads((src / "processor_config.json").read_text())
    ip = {k: v for k, v in proc["image_processor"].items()}
    ip["processor_class"] = "Glm4vProcessor"
    vp = {k: v for k, v in proc["video_processor"].items()}
    vp["processor_class"] = "Glm4vProcessor"
    (dst / "preprocessor_config.json").write_text(json.dumps(ip, indent=2, sort_keys=True) + "\n")
    (dst / "video_preprocessor_config.json").write_text(json.dumps(vp, indent=2, sort_keys=True) + "\n")
    shutil.copyfile(TOKENIZER_DIR / "tokenizer.json", dst / "tokenizer.json")
    tc = {"clean_up_tokenization_spaces": False, "do_lower_case": False, "eos_token": "<|endoftext|>",
          "extra_special_tokens": {}, "model_max_length": 128000, "pad_token": "<|endoftext|>",
          "padding_side": "left", "processor_class": "Glm4vProcessor", "remove_space": False,
          "tokenizer_class": "PreTrainedTokenizerFast"}
    (dst / "tokenizer_config.json").write_text(json.dumps(tc, indent=2) + "\n")
    print(f"checkpoint moe-released: {len(w)} tensors ({len(extra)} unused layer-{nl} tensors) -> {dst.relative_to(ROOT)}")
    return dst


def check_released_weights(ckroot):
    """The released folder holds exactly the moe weights (plus the unused layer); HF loads both identically."""
    a = load_file(ckroot / "moe" / "model.safetensors")
    b = {}
    for fn in sorted((ckroot / "moe-released").glob("model-*.safetensors")):
        b.update(load_file(fn))
    nl = CKPTS["moe"]["text"]["num_hidden_layers"]
    extra = [k for k in b if k.startswith(f"model.language_model.layers.{nl}.")]
    assert set(b) - set(extra) == set(a), "released layout: tensor names differ"
    for k in a:
        assert torch.equal(a[k].float(), b[k].float()), k
    ma = Glm4vMoeForConditionalGeneration.from_pretrained(ckroot / "moe", dtype=torch.float32, attn_implementation="eager")
    mb = Glm4vMoeForConditionalGeneration.from_pretrained(ckroot / "moe-released", dtype=torch.float32,
                                                          attn_implementation="eager")
    sa, sb = ma.state_dict(), mb.state_dict()
    assert set(sa) == set(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    ta, tb = ma.config.text_config, mb.config.text_config
    hd = lambda c: getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    assert hd(ta) == hd(tb)
    for f in ("rope_parameters", "n_group", "topk_group", "routed_scaling_factor", "first_k_dense_replace"):
        assert getattr(ta, f) == getattr(tb, f), (f, getattr(ta, f), getattr(tb, f))
    print("moe-released: same weights and text config as moe under transformers", transformers.__version__)


# ------------------------------------------------------------------------------------------------------------------
# test images (written once; committed)


def photo_like(w, h, seed, noise):
    """A smooth synthetic landscape (sky, sun, mountains, meadow, house); noise > 0 adds texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    yn, xn = y / h, x / w
    img = np.stack([90 + 110 * yn, 140 + 80 * yn, 230 - 40 * yn], -1)
    sun = np.clip(1.5 - np.hypot(xn - 0.75, (yn - 0.2) * h / w) / 0.07, 0, 1)
    img += sun[..., None] * (np.array([255, 240, 180]) - img)
    ridge = 0.45 + 0.08 * np.sin(xn * 7.0 + 1.0) + 0.04 * np.sin(xn * 19.0) + 0.02 * np.sin(xn * 43.0 + 2.0)
    shade = 0.7 + 0.3 * np.sin(xn * 25 + yn * 9)
    m = yn > ridge
    img[m] = np.stack([95 * shade, 100 * shade, 120 * shade], -1)[m]
    tex = noise * rng.normal(0, 1, (h, w))
    g = yn > 0.68 + 0.03 * np.sin(xn * 5.0)
    img[g] = np.stack([60 + 40 * yn + 12 * tex, 130 + 50 * yn + 18 * tex, 40 + 10 * tex], -1)[g]
    hx0, hx1, hy0, hy1 = int(0.2 * w), int(0.35 * w), int(0.6 * h), int(0.8 * h)
    img[hy0:hy1, hx0:hx1] = [180, 40, 35]
    img[hy0 + (hy1 - hy0) // 3:hy1 - 2, hx0 + (hx1 - hx0) // 3:hx0 + 2 * (hx1 - hx0) // 3] = [70, 45, 30]
    img += noise * rng.normal(0, 3, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).round().astype(np.uint8), "RGB").filter(ImageFilter.GaussianBlur(0.8))


def rgba_image(w, h, seed):
    """RGBA gradient with a radial alpha: fully transparent / opaque / half-transparent bands."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r, g = 255 * x / (w - 1), 255 * y / (h - 1)
    b = 128 + 100 * np.sin(x / 6.0) * np.cos(y / 5.0)
    a = np.clip(255 * (1.2 - np.hypot(x - w / 2, y - h / 2) / (0.45 * w)), 0, 255)
    a[:, :8] = 0
    a[:, -8:] = 255
    a[h // 2 - 3:h // 2 + 3, :] = 128
    arr = np.stack([r, g, b, a], -1) + np.concatenate([rng.normal(0, 4, (h, w, 3)), np.zeros((h, w, 1))], -1)
    return Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8), "RGBA")


TEST_IMAGES = {
    "tests/data/images/photo_160x120.jpg": lambda p: photo_like(160, 120, 1, 1.0).save(p, quality=85),
    "tests/data/images/rgba_120x90.png": lambda p: rgba_image(120, 90, 3).save(p, optimize=True),
    # 450x300 -> smart_resize 308x448 -> grid 22x32 = 704 patches (the realdims case)
    "tests/data/images/photo_450x300.png": lambda p: photo_like(450, 300, 2, 0.0).save(p, optimize=True),
}


def ensure_images():
    for rel, make in TEST_IMAGES.items():
        p = ROOT / rel
        if not p.exists():
            make(p)
            print("wrote", rel, p.stat().st_size, "bytes")


# ------------------------------------------------------------------------------------------------------------------
# cases

SYS = "[gMASK]<sop><|system|>\nYou are a careful assistant."
P_TEXT = SYS + "<|user|>\nWrite one line about the sea.<|assistant|>\n<think></think>\n"
P_IMAGE = SYS + "<|user|>\n<|begin_of_image|><|image|><|end_of_image|>What is in this image?<|assistant|>\n"
P_MULTI = ("[gMASK]<sop><|user|>\n<|begin_of_image|><|image|><|end_of_image|>Compare this picture"
           "<|begin_of_image|><|image|><|end_of_image|>with this one.<|assistant|>\n<think></think>\n")
P_VIDEO = "[gMASK]<sop><|user|>\n<|begin_of_video|><|video|><|end_of_video|>What happens?<|assistant|>\n"
P_LONG = """[gMASK]<sop><|system|>
You are a careful assistant. Answer briefly and name the note you rely on.<|user|>
Read these notes from a harbour logbook.

1. Dawn: fishing boats return at 05:40, gulls circle the pier, and the café on the corner opens. Coffee 2.50 EUR, croissant 1.80 EUR.
2. Weather (week 32): Mon 18°C, wind NW 12 km/h; Tue 21°C, calm; Wed 16°C, rain 4 mm; Fri 23°C — the warmest day.
3. Code found on a notebook page:
    def tide(t):
        return 1.2 * math.sin(2 * math.pi * t / 12.42) + 0.3
4. Inventory: 14 ropes, 3 anchors (one rusty), 27 life jackets.<|assistant|>
<think></think>
I have read the four notes.<|user|>
Which day was the warmest, and what does tide(0) return?<|assistant|>
<think></think>
"""
P_REALDIMS = "[gMASK]<sop><|user|>\n<|begin_of_image|><|image|><|end_of_image|>Is there a house in the picture?<|assistant|>"
# (chosen among 8 questions for the largest greedy margins; ends without a newline so `$(cat FILE)` keeps it exact)
REALDIMS_IMAGE = "tests/data/images/photo_450x300.png"

IMG = "tests/data/images/"
FRAMES8 = [f"tests/data/video_frames/frame_{i:02d}.png" for i in range(8)]

CASES = {
    "moe.text": dict(ckpt="moe", prompt=P_TEXT, about="text only; 2-group routing, 1 shared expert"),
    "moe.image": dict(ckpt="moe", prompt=P_IMAGE, images=[IMG + "synth_200x150.png"],
                      about="one RGB image (grid 10x14, downsampled 24x24 position table)"),
    "moe.multi_image": dict(ckpt="moe", prompt=P_MULTI, images=[IMG + "synth_97x61.png", IMG + "gray_200x150.png"],
                            about="two images of different sizes (a small one upscaled by smart_resize, a "
                                  "grayscale one) with text between them"),
    "moe.video": dict(ckpt="moe", prompt=P_VIDEO, video=FRAMES8[:7], fps=2.0,
                      about="7 frames at fps 2, no sampling: T padded to 8 by repeating the last frame, "
                            "4 temporal patches, timestamps 0 1 2 3"),
    "dense.text": dict(ckpt="dense", prompt=P_TEXT, about="text only; dense sandwich-norm layers"),
    "dense.image": dict(ckpt="dense", prompt=P_IMAGE, images=[IMG + "rgba_120x90.png"],
                        about="RGBA PNG: transformers 5.x composites it onto white before processing"),
    "dense.multi_image": dict(ckpt="dense", prompt=P_MULTI, images=[IMG + "synth_200x150.png", IMG + "synth_97x61.png"],
                              about="two RGB images of different sizes"),
    "dense.video": dict(ckpt="dense", prompt=P_VIDEO, video=FRAMES8, fps=2.0,
                        about="8 frames at fps 2, no sampling (as tests/data/golden/dense.video)"),
    "dense.image_jpeg": dict(ckpt="dense", prompt=P_IMAGE, images=[IMG + "photo_160x120.jpg"],
                             about="baseline JPEG (4:2:0) decoded by PIL with libjpeg-turbo, as glm4v decodes it: "
                                   "pixel_values identical"),
    "moe-var.image": dict(ckpt="moe-var", prompt=P_IMAGE, images=[IMG + "synth_200x150.png"],
                          about="head_dim != hidden/heads, grouped top-4 routing, 4-chunk mrope, vision head_dim "
                                "48 with qkv bias, 16x16 position table"),
    "moe-var.text_long": dict(ckpt="moe-var", prompt=P_LONG, taps=False,
                              about="multi-turn prompt of several hundred tokens (non-ASCII, digits, code); "
                                    "no module taps (size)"),
    "dense-var.image": dict(ckpt="dense-var", prompt=P_IMAGE, images=[IMG + "synth_200x150.png"],
                            about="other dense dims; grid 10x14 upsamples the 8x8 position table"),
    "moe-released.text": dict(ckpt="moe-released", prompt=P_TEXT, same_as="moe.text",
                              about="released layout (4.57 config, shards, F32 router bias, unused layer 3); "
                                    "equals moe.text"),
    "moe-released.image": dict(ckpt="moe-released", prompt=P_IMAGE, images=[IMG + "synth_200x150.png"],
                               same_as="moe.image", about="released layout; equals moe.image"),
}


class Taps:
    """Forward hooks recording module outputs under our dump names (batch dimension dropped) while `record` is set
    (the prefill), and the smallest expert-selection gap of every router call (prefill and decode)."""

    VISION = ("model.visual.patch_embed", "model.visual.embeddings", "model.visual.post_layernorm",
              "model.visual.downsample")

    def __init__(self, model, modules=True):
        self.out, self.handles, self.position_ids, self.router_gap = {}, [], None, float("inf")
        self.record, self.modules = True, modules
        for name, mod in model.named_modules():
            parts = name.split(".")
            if type(mod).__name__.endswith("TopkRouter"):
                self.handles.append(mod.register_forward_hook(self.router_hook(name)))
            elif name == "model.visual":
                self.handles.append(mod.register_forward_hook(self.visual_hook))
            elif name == "model.language_model":
                self.handles.append(mod.register_forward_pre_hook(self.lm_pre_hook, with_kwargs=True))
            elif name == "model.language_model.norm":
                self.handles.append(mod.register_forward_hook(self.save_hook("norm")))
            elif modules and (name in self.VISION or (name.startswith("model.visual.blocks.") and len(parts) == 4) or
                              (name.startswith("model.language_model.layers.") and len(parts) == 5 and
                               parts[4] in ("self_attn", "mlp"))):
                self.handles.append(mod.register_forward_hook(self.save_hook(name)))

    def add(self, key, t):
        if self.record:
            self.out.setdefault(key, []).append(t.detach().clone())

    def save_hook(self, key):
        def hook(mod, args, out):
            if isinstance(out, tuple):  # attention returns (output, weights)
                out = out[0]
            if key == "model.visual.downsample":
                out = out.reshape(out.shape[0], -1)  # [N, out, 1, 1] -> [N, out]
            elif out.dim() == 3:
                assert out.shape[0] == 1
                out = out[0]
            self.add(key, out)
        return hook

    def visual_hook(self, mod, args, out):
        self.add("image_embeds", out.pooler_output)

    def lm_pre_hook(self, mod, args, kwargs):
        if self.record and self.position_ids is None and kwargs.get("position_ids") is not None:
            self.position_ids = kwargs["position_ids"].detach().clone()

    def router_hook(self, name):
        def hook(m, args, out):
            logits, w, idx = out  # Glm4vMoeTextTopkRouter: router_logits, topk_weights, topk_indices
            if self.modules:
                self.add(f"{name}.out0", logits)
                self.add(f"{name}.out1", w)
                self.add(f"{name}.out2", idx)
            # gap between the last kept and the first dropped group / expert (as the router ranks them)
            s = logits.sigmoid() + m.e_score_correction_bias
            E, G, tg, k = m.num_experts, m.num_group, m.topk_group, m.top_k
            gs = s.view(-1, G, E // G).topk(2, dim=-1)[0].sum(-1)
            gap = float("inf")
            if tg < G:
                gsort = gs.sort(dim=-1, descending=True)[0]
                gap = min(gap, float((gsort[:, tg - 1] - gsort[:, tg]).min()))
            keep = torch.zeros_like(gs).scatter_(1, gs.topk(tg, dim=-1, sorted=False)[1], 1.0).bool()
            ss = s.masked_fill(~keep.repeat_interleave(E // G, dim=1), float("-inf")).sort(dim=-1, descending=True)[0]
            if k < ss.shape[1]:
                dd = ss[:, k - 1] - ss[:, k]
                dd = dd[torch.isfinite(dd)]
                if dd.numel():
                    gap = min(gap, float(dd.min()))
            self.router_gap = min(self.router_gap, gap)
        return hook

    def remove(self):
        for h in self.handles:
            h.remove()
        self.handles = []

    def tensors(self):
        return {k: torch.cat(v, 0) if len(v) > 1 else v[0] for k, v in self.out.items()}


def load_media(case):
    # transformers.image_utils.load_image: what a file path given to the processor / chat template goes through
    # (EXIF transpose, then PIL convert("RGB"): alpha dropped, not composited) - the same input glm4v's -i gets
    from transformers.image_utils import load_image

    kw, frames = {}, None
    if case.get("images"):
        kw["images"] = [load_image(str(ROOT / p)) for p in case["images"]]
    if case.get("video"):
        frames = [load_image(str(ROOT / p)) for p in case["video"]]
        n = len(frames)
        kw["videos"] = [frames]
        kw["video_metadata"] = [VideoMetadata(total_num_frames=n, fps=case["fps"], frames_indices=list(range(n)))]
        kw["do_sample_frames"] = False
    return kw


def run_hf(model, processor, prompt, media, n_gen, record_modules=True):
    """Prefill with taps, then greedy generation; returns (dump dict, info dict)."""
    inputs = processor(text=[prompt], return_tensors="pt", **media)
    L = inputs["input_ids"].shape[1]
    taps = Taps(model, modules=record_modules)
    model.model.rope_deltas = None
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True, use_cache=False)
    t = taps.tensors()
    taps.record = False
    model.model.rope_deltas = None
    with torch.no_grad():
        g = model.generate(**inputs, max_new_tokens=n_gen, min_new_tokens=n_gen, do_sample=False,
                           output_logits=True, output_scores=True, return_dict_in_generate=True)
    taps.remove()

    nl = model.config.text_config.num_hidden_layers
    d = {"input_ids": inputs["input_ids"][0]}
    pos = taps.position_ids
    if pos is None:  # text only: HF lets the text model use arange on all three rows
        pos = torch.arange(L).view(1, 1, L).expand(3, 1, L)
    assert pos.shape == (3, 1, L), pos.shape
    d["position_ids"] = pos[:, 0]
    for k in ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw"):
        if k in inputs:
            d[k] = inputs[k]
    hs = out.hidden_states
    assert len(hs) == nl + 1
    for i, h in enumerate(hs):
        d[f"hidden_states.{i}"] = h[0]
    if "norm" in t:
        assert torch.equal(t.pop("norm"), hs[-1][0]), "last hidden state is not the final norm output"
    d["logits"] = out.logits[0]
    gen_ids = g.sequences[0, L:]
    gen_logits = torch.stack(g.logits)[:, 0].float()
    scores = torch.stack(g.scores)[:, 0].float()
    assert gen_ids.numel() == n_gen
    assert torch.equal(gen_ids, gen_logits.argmax(-1)), "a generated token is not the argmax of its raw logits"
    top2 = gen_logits.topk(2, dim=-1)[0]
    d["generated_ids"] = gen_ids
    d["generated_logits"] = gen_logits
    d["generated_margin"] = top2[:, 0] - top2[:, 1]
    d.update(t)
    d = {k: v.detach().contiguous() for k, v in d.items()}
    for k, v in d.items():
        if v.is_floating_point():
            d[k] = v.float()
        else:
            d[k] = v.long()
    # the first generated step re-runs the prompt: it must agree with the prefill's last row
    pre = (d["logits"][-1] - gen_logits[0]).abs().max().item()
    info = dict(input_len=L, n_generated=n_gen, generated_ids=gen_ids.tolist(),
                generated_text=processor.tokenizer.decode(gen_ids, skip_special_tokens=False),
                min_margin=float(d["generated_margin"].min()),
                router_min_gap=None if taps.router_gap == float("inf") else taps.router_gap,
                prefill_vs_generate_step0_maxdiff=pre,
                scores_equal_logits=bool(torch.equal(scores, gen_logits)))
    return d, info


def tensor_table(d):
    return {k: [str(v.dtype).replace("torch.", ""), list(v.shape)] for k, v in sorted(d.items())}


def load_model(ckdir):
    cfg = json.loads((ckdir / "config.json").read_text())
    cls = Glm4vMoeForConditionalGeneration if cfg["model_type"] == "glm4v_moe" else Glm4vForConditionalGeneration
    return cls.from_pretrained(ckdir, dtype=torch.float32, attn_implementation="eager").eval()


def versions():
    import torchvision
    import PIL
    return {"transformers": transformers.__version__, "torch": torch.__version__,
            "torchvision": torchvision.__version__, "pillow": PIL.__version__, "numpy": np.__version__,
            "python": sys.version.split()[0]}


def write_case(outdir, name, d, meta):
    outdir.mkdir(parents=True, exist_ok=True)
    # one metadata key: safetensors writes several in random order, and the files must be reproducible
    save_file(d, outdir / f"{name}.safetensors", metadata={
        "generator": f"tests/golden/make_golden.py {name} (transformers {transformers.__version__}, "
                     f"torch {torch.__version__})"})
    meta["tensors"] = tensor_table(d)
    (outdir / f"{name}.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    size = (outdir / f"{name}.safetensors").stat().st_size
    print(f"case {name}: L={meta['input_len']} min_margin={meta['min_margin']:.4g} "
          f"router_min_gap={meta['router_min_gap']} -> {size / 1e6:.2f} MB; generated {meta['generated_text']!r}")
    if meta["min_margin"] < 1e-3:
        print(f"  WARNING {name}: near tie in greedy decoding (margin {meta['min_margin']:.3g})")
    if meta["router_min_gap"] is not None and meta["router_min_gap"] < 1e-5:
        print(f"  WARNING {name}: near tie in expert selection (gap {meta['router_min_gap']:.3g})")


def run_case(name, out):
    case = CASES[name]
    ckdir = out / "ckpt" / case["ckpt"]
    model = load_model(ckdir)
    processor = Glm4vProcessor.from_pretrained(ckdir)
    assert type(processor.image_processor).__name__ == "Glm4vImageProcessor"  # torchvision backend, the default
    media = load_media(case)
    assert not (case.get("images") and case.get("video")), "image_embeds order assumes one modality"
    d, info = run_hf(model, processor, case["prompt"], media, N_GEN, record_modules=case.get("taps", True))
    cli = ["./glm4v", "-m", str(ckdir.relative_to(ROOT)), "--raw", "-p", case["prompt"]]
    for p in case.get("images", []):
        cli += ["-i", p]
    cli += ["-n", str(N_GEN)]
    meta = dict(case=name, about=case["about"], checkpoint=str(ckdir.relative_to(ROOT)), prompt=case["prompt"],
                images=case.get("images", []), video_frames=case.get("video", []), fps=case.get("fps"),
                do_sample_frames=False if case.get("video") else None, **info,
                experts_implementation=getattr(model.config.text_config, "_experts_implementation", None),
                versions=versions())
    if not case.get("video"):
        meta["cli"] = cli
    write_case(out / "cases", name, d, meta)
    # for tests/cli_cases.sh (no JSON parser in CI): the prompt as a file, the CLI arguments one per line, the frames
    (out / "cases" / f"{name}.prompt.txt").write_text(case["prompt"])
    args = ["-m", str(ckdir.relative_to(ROOT)), "--raw", "-f", str((out / "cases" / f"{name}.prompt.txt").relative_to(ROOT))]
    for p in case.get("images", []):
        args += ["-i", p]
    if case.get("video"):
        args += ["--fps", str(case["fps"])]
        (out / "cases" / f"{name}.frames").write_text("".join(f + "\n" for f in case["video"]))
    (out / "cases" / f"{name}.args").write_text("".join(a + "\n" for a in args))
    if case.get("same_as"):
        ref = load_file(out / "cases" / f"{case['same_as']}.safetensors")
        assert set(ref) == set(d), (set(ref) ^ set(d))
        for k in ref:
            assert torch.equal(ref[k], d[k]), f"{name} differs from {case['same_as']} in {k}"
        print(f"  {name} == {case['same_as']} (every tensor bit-identical)")
    del model
    gc.collect()


# ------------------------------------------------------------------------------------------------------------------
# realdims: GLM-4.5V dimensions from tools/synth_ckpt


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


def run_realdims(out, ckdir):
    subprocess.run(["make", "-s", "tools/synth_ckpt"], cwd=ROOT, check=True)
    ckdir = Path(ckdir)
    cmd = ["tools/synth_ckpt", "--preset", "realdims", "--seed", "1", "--out", str(ckdir)]
    if not (ckdir / "model.safetensors").exists():
        subprocess.run(cmd, cwd=ROOT, check=True)
    digest = sha256(ckdir / "model.safetensors")
    print("realdims checkpoint", ckdir, "sha256", digest)
    torch.set_num_threads(os.cpu_count() or 1)
    model = Glm4vMoeForConditionalGeneration.from_pretrained(ckdir, dtype=torch.float32, attn_implementation="eager",
                                                             low_cpu_mem_usage=True).eval()
    gc.collect()
    processor = Glm4vProcessor.from_pretrained(ckdir)
    media = {"images": [Image.open(ROOT / REALDIMS_IMAGE)]}
    d, info = run_hf(model, processor, P_REALDIMS, media, N_GEN_REALDIMS, record_modules=False)
    keep = ["input_ids", "position_ids", "pixel_values", "image_grid_thw", "image_embeds", "hidden_states.0",
            "hidden_states.1", "hidden_states.2", "logits", "generated_ids", "generated_logits", "generated_margin"]
    # image_embeds come from the visual hook even without module taps
    d = {k: d[k] for k in keep}
    assert d["pixel_values"].shape[0] == 704, d["pixel_values"].shape
    rd = out / "realdims"
    rd.mkdir(parents=True, exist_ok=True)
    (rd / "realdims.image.prompt.txt").write_text(P_REALDIMS)
    meta = dict(case="realdims.image", about="GLM-4.5V dimensions (2 text layers: dense + 128-expert MoE, 24 vision "
                                             "blocks), synthetic weights from tools/synth_ckpt",
                checkpoint_command=" ".join(cmd[:-1] + ["DIR"]), model_sha256=digest,
                prompt=P_REALDIMS, prompt_file=str((rd / "realdims.image.prompt.txt").relative_to(ROOT)),
                images=[REALDIMS_IMAGE], **info,
                cli=["./glm4v", "-m", "DIR", "--raw", "-p", P_REALDIMS, "-i", REALDIMS_IMAGE, "-n",
                     str(N_GEN_REALDIMS)],
                experts_implementation=getattr(model.config.text_config, "_experts_implementation", None),
                versions=versions())
    write_case(rd, "realdims.image", d, meta)


# ------------------------------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "tests" / "golden"))
    ap.add_argument("--cases", nargs="*", default=None,
                    help="case names or globs (default: every tiny case; 'realdims' or 'all' adds the big one)")
    ap.add_argument("--realdims-dir", default=str(ROOT / "build" / "realdims"))
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    if args.list:
        for k, v in CASES.items():
            print(f"{k:22s} {v['about']}")
        print(f"{'realdims':22s} GLM-4.5V dimensions from tools/synth_ckpt (~7 GB bf16, ~14 GB RAM in fp32)")
        return
    out = Path(args.out).resolve()
    pats = args.cases if args.cases else ["*"]
    want_real = any(p in ("realdims", "all") for p in pats)
    names = [n for n in CASES if any(fnmatch.fnmatch(n, p) or p == "all" for p in pats)]

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    ensure_images()
    if names:
        torch.set_num_threads(1)  # same reduction order on every run
        need = {CASES[n]["ckpt"] for n in names}
        if "moe-released" in need:
            need.add("moe")
        for ck in CKPT_ORDER:
            if ck in need and ck != "moe-released":
                build_ckpt(ck, out / "ckpt")
        if "moe-released" in need:
            build_released(out / "ckpt")
            check_released_weights(out / "ckpt")
        # a same_as case needs its reference first
        order = sorted(names, key=lambda n: CASES[n].get("same_as") is not None)
        for n in order:
            ref = CASES[n].get("same_as")
            if ref and ref not in names and not (out / "cases" / f"{ref}.safetensors").exists():
                run_case(ref, out)
            run_case(n, out)
    if want_real:
        run_realdims(out, args.realdims_dir)


if __name__ == "__main__":
    main()
