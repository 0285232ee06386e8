#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# dequant_folder.py - the reference for quantised GGUF files: the weights of a text GGUF (+ its mmproj) dequantised by
# gguf-py (the `gguf` package's numpy gguf.quants.dequantize, ggml's own definitions), put back in the HF layout and
# written as an HF folder (model.safetensors + the tiny folder's config, tokenizer and processor files). glm4v.c's
# HF-folder path on that folder is what its GGUF path must equal (tests/cli_gguf.sh: byte-identical dumps).
#
# usage: dequant_folder.py TEXT.gguf MMPROJ.gguf HF_FOLDER OUT_DIR
#   HF_FOLDER: the checkpoint the GGUF files were converted from (its tensor names and shapes, its config files)
#
# The HF name of each GGUF tensor comes from tests/data/gguf/name_map.json (written by make_gguf_cases.py from gguf-py's
# TensorNameMap, for the tiny checkpoints' names: used as patterns over the block index, so other depths map); the layout changes of llama.cpp's converter are undone here with numpy, independently of gguf_map.c:
#   stack    torch.stack(experts, dim=0)               -> expert x = array[x]
#   neox_qk  Glm4Model.normal_to_neox (dense q / k)     -> rows put back through the inverse permutation
#   conv3d   Conv3d [out, in, 2, p, p] split in two      -> the two frames stacked on axis 2
# A tensor the GGUF file holds in F32 whose every value is a bf16 number (the converter widened it from the bf16
# checkpoint) is written as BF16, as glm4v.c's loader reads it (gguf_model.c narrow_bf16: the bf16 kernels' order);
# every dequantised tensor is written as F32.
import json
import os
import re
import shutil
import struct
import sys

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType
from gguf.quants import dequantize

HERE = os.path.dirname(os.path.abspath(__file__))
NAME_MAP = os.path.join(HERE, "..", "data", "gguf", "name_map.json")


# the tensors of a GGUF file: name -> (numpy float32 array in HF order (ggml ne reversed), ggml type)
def read_gguf(path):
    r = GGUFReader(path)
    out = {}
    for t in r.tensors:
        shape = [int(x) for x in reversed(t.shape.tolist())]
        a = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
        out[t.name] = (a, t.tensor_type)
    arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
    return arch, out


# Glm4Model.normal_to_neox on row indices: position j of the result holds row perm[j] of the input
def neox_perm(rows, head_dim, rotary_dim):
    perm = []
    for h in range(rows // head_dim):
        base = h * head_dim
        rot = list(range(rotary_dim))
        perm += [base + i for i in rot[::2] + rot[1::2]] + [base + i for i in range(rotary_dim, head_dim)]
    return np.array(perm)


# the HF tensor names and shapes of a folder's model.safetensors
def hf_tensors(folder):
    with open(os.path.join(folder, "model.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
    return {k: v["shape"] for k, v in h.items() if k != "__metadata__"}


def is_bf16_exact(a):
    return not np.any(a.astype(np.float32).view(np.uint32) & 0xFFFF)


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a, dt = tensors[name]
        b = (a.astype(np.float32).view(np.uint32) >> 16).astype("<u2").tobytes() if dt == "BF16" else a.astype("<f4").tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: dequant_folder.py TEXT.gguf MMPROJ.gguf HF_FOLDER OUT_DIR")
    text, mmproj, folder, out = sys.argv[1:]
    arch, gt = read_gguf(text)
    _, gv = read_gguf(mmproj)
    g = {**gt, **gv}
    nm = json.load(open(NAME_MAP))
    # the names of the tiny checkpoints as patterns ("{bid}" for the block index), so any depth maps
    table = {}
    for hf, gname, tr in nm[arch] + nm["glm4v_mmproj"]:
        hp = re.sub(r"\.(layers|blocks)\.\d+\.", r".\1.{bid}.", hf)
        gp = re.sub(r"^(v\.)?blk\.\d+\.", r"\1blk.{bid}.", gname)
        if (gp, tr) not in table.setdefault(hp, []):
            table[hp].append((gp, tr))
    cfg = json.load(open(os.path.join(folder, "config.json")))
    tc = cfg["text_config"]
    head_dim = tc.get("head_dim") or tc["hidden_size"] // tc["num_attention_heads"]
    prf = tc.get("partial_rotary_factor", tc.get("rope_parameters", {}).get("partial_rotary_factor", 0.5))
    rotary_dim = int(head_dim * prf)
    tensors = {}
    for hf, shape in hf_tensors(folder).items():
        key = hf
        if ".mlp.experts." in hf and hf.split(".mlp.experts.")[1].split(".")[0].isdigit():
            pre, rest = hf.split(".mlp.experts.")
            xid, tail = rest.split(".", 1)
            key = f"{pre}.mlp.experts.{{xid}}.{tail}"
        m = re.search(r"\.(layers|blocks)\.(\d+)\.", key)
        bid = m.group(2) if m else None
        if m:
            key = key[: m.start()] + f".{m.group(1)}.{{bid}}." + key[m.end():]
        if key not in table:
            sys.exit(f"{hf}: not in name_map.json")
        gname, tr = table[key][0]
        gname = gname.replace("{bid}", bid or "")
        if tr == "unused":
            continue
        a, ty = g[gname]
        if tr == "stack":
            a, ty = a[int(xid)], ty
        elif tr == "neox_qk":
            perm = neox_perm(a.shape[0], head_dim, rotary_dim)
            b = np.empty_like(a)
            b[perm] = a
            a = b
        elif tr in ("conv3d_t0", "conv3d_t1"):
            t1, _ = g[[n for n, t in table[key] if t == "conv3d_t1"][0].replace("{bid}", bid or "")]
            a = np.stack([a, t1], axis=2)
        a = a.reshape(shape)
        dt = "BF16" if ty == GGMLQuantizationType.F32 and a.ndim >= 2 and is_bf16_exact(a) else "F32"
        if ty == GGMLQuantizationType.BF16:
            dt = "BF16"  # (exact: widened from bf16 by dequantize)
        tensors[hf] = (a, dt)
    os.makedirs(out, exist_ok=True)
    write_safetensors(os.path.join(out, "model.safetensors"), tensors)
    for f in os.listdir(folder):
        if f.endswith(".json"):
            shutil.copy(os.path.join(folder, f), os.path.join(out, f))


if __name__ == "__main__":
    main()
