#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# make_gguf_cases.py - writes the GGUF test files of tests/test_gguf.c with gguf-py (the `gguf` PyPI package, the
# reader/writer of llama.cpp) and the reference values gguf-py reads back from them:
#   tests/data/gguf/types.gguf       one tensor per ggml type we support (F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K
#                                    Q3_K Q4_K Q5_K Q6_K), a 3-d one, one of an unsupported type (IQ4_NL), and metadata
#                                    of every GGUF value type (scalars, arrays of each, strings, nested arrays)
#   tests/data/gguf/align64.gguf     general.alignment = 64, a few tensors
#   tests/data/gguf/*.json           what gguf-py's GGUFReader sees: every key (type, value), every tensor (type, ne in
#                                    ggml order, byte size, absolute data offset) and where its reference values are
#   tests/data/gguf/*.ref.f32        gguf.quants.dequantize() of every supported tensor, float32 little-endian
#   tests/data/gguf/split-0000k-of-00003.gguf  a model split in 3 files (GGUFWriter split_max_tensors=2) and
#                                    split.json: each tensor's shard and gguf-py's values of it
#   tests/data/gguf/name_map.json    the GGUF name llama.cpp's converter gives each HF tensor of the tiny checkpoints
#                                    (weights/tiny-glm4v-*; its renaming steps, then gguf-py's TensorNameMap)
# Q4_0 .. Q8_0 and BF16 data come from gguf.quants.quantize (gguf-py cannot quantise the K-quants: their blocks are
# random bytes with finite fp16 scales, which ggml's dequantisation defines all the same). F16 / BF16 tensors are
# random bit patterns (subnormals included, no inf / NaN). Deterministic (seeded); run from the repository root:
#   python3 tests/gguf/make_gguf_cases.py
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T, GGUFValueType as V
from gguf.quants import quantize, dequantize

OUT = "tests/data/gguf"
rng = np.random.default_rng(17)


def rand_f16_bits(n):
    # random half-precision bit patterns with exponent < 31 (finite), including subnormals and -0
    b = rng.integers(0, 1 << 16, size=n, dtype=np.uint32).astype(np.uint16)
    b = np.where((b & 0x7C00) == 0x7C00, b & 0x83FF, b)
    return b.astype(np.uint16)


def rand_bf16_bits(n):
    b = rng.integers(0, 1 << 16, size=n, dtype=np.uint32).astype(np.uint16)
    b = np.where((b & 0x7F80) == 0x7F80, b & 0x807F, b)
    return b.astype(np.uint16)


def small_f16(n):
    # finite fp16 scales of either sign and a range of magnitudes (subnormal to ~1)
    v = (rng.standard_normal(n) * np.exp2(rng.integers(-16, 1, size=n))).astype(np.float16)
    return v.view(np.uint16)


# byte offsets of the fp16 scale fields inside a K-quant block (ggml-common.h)
K_SCALES = {T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208]}


def kquant_blocks(qtype, rows, K):
    bs, ts = gguf.GGML_QUANT_SIZES[qtype]
    nb = rows * K // bs
    blk = rng.integers(0, 256, size=(nb, ts), dtype=np.uint32).astype(np.uint8)
    for off in K_SCALES[qtype]:
        blk[:, off:off + 2] = small_f16(nb).view(np.uint8).reshape(nb, 2)
    return blk.reshape(rows, K // bs * ts)


def tensor_data(qtype, shape):
    """(bytes array for the writer, raw_dtype or None) for a tensor of qtype with numpy shape (..., K)"""
    n = int(np.prod(shape))
    if qtype == T.F32:
        return rng.standard_normal(shape).astype(np.float32), None
    if qtype == T.F16:
        return rand_f16_bits(n).view(np.float16).reshape(shape), None
    if qtype == T.BF16:
        return rand_bf16_bits(n).view(np.uint8).reshape(*shape[:-1], shape[-1] * 2), T.BF16
    if qtype in K_SCALES:
        rows = n // shape[-1]
        return kquant_blocks(qtype, rows, shape[-1]).reshape(*shape[:-1], -1), qtype
    if qtype == T.IQ4_NL:
        bs, ts = gguf.GGML_QUANT_SIZES[qtype]
        return rng.integers(0, 256, size=(*shape[:-1], shape[-1] // bs * ts), dtype=np.uint32).astype(np.uint8), qtype
    # gguf-py quantises Q4_0, Q4_1, Q5_0, Q5_1, Q8_0
    x = (rng.standard_normal(shape) * rng.uniform(0.01, 3.0, size=(*shape[:-1], 1))).astype(np.float32)
    return quantize(x, qtype), qtype


SUPPORTED = [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]


def write_case(name, tensors, metadata, alignment=None):
    path = os.path.join(OUT, name + ".gguf")
    w = gguf.GGUFWriter(path, arch="testarch")
    if alignment:
        w.add_custom_alignment(alignment)
    for key, vtype, val, sub in metadata:
        w.add_key_value(key, val, vtype, sub_type=sub)
    for tname, qtype, shape in tensors:
        data, raw = tensor_data(qtype, shape)
        w.add_tensor(tname, data, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # read back with gguf-py's reader: the reference
    r = gguf.GGUFReader(path)
    kvs = []
    for f in r.fields.values():
        if f.name.startswith("GGUF."):  # the reader's pseudo-fields for the header
            continue
        t = f.types
        e = {"key": f.name, "type": V(t[0]).name}
        if t[0] == V.ARRAY:
            e["sub_type"] = V(t[1]).name
        e["value"] = field_value(f)
        kvs.append(e)
    refs = bytearray()
    ts = []
    for t in r.tensors:
        e = {"name": t.name, "type": int(t.tensor_type), "type_name": T(t.tensor_type).name,
             "ne": [int(x) for x in t.shape], "nbytes": int(t.n_bytes), "data_offset": int(t.data_offset)}
        if T(t.tensor_type) in SUPPORTED:
            raw = np.asarray(t.data)
            if T(t.tensor_type) == T.F32:
                deq = raw.astype(np.float32)
            elif T(t.tensor_type) == T.F16:
                deq = dequantize(raw.view(np.uint8), T.F16) if raw.dtype == np.uint8 else raw.astype(np.float32)
            else:
                deq = dequantize(raw.view(np.uint8), T(t.tensor_type))
            deq = np.ascontiguousarray(deq, dtype="<f4").ravel()
            assert deq.size == int(np.prod(t.shape)), (t.name, deq.size, t.shape)
            e["ref_offset"] = len(refs) // 4
            e["ref_count"] = int(deq.size)
            refs += deq.tobytes()
        ts.append(e)
    with open(os.path.join(OUT, name + ".ref.f32"), "wb") as fo:
        fo.write(refs)
    with open(os.path.join(OUT, name + ".json"), "w") as fo:
        json.dump({"file": name + ".gguf", "gguf_py_version": gguf_version(), "alignment": int(r.alignment),
                   "version": int(r.fields["GGUF.version"].parts[-1][0]),
                   "data_offset": int(r.data_offset), "kv": kvs, "tensors": ts}, fo, indent=1)
        fo.write("\n")


def gguf_version():
    try:
        from importlib.metadata import version
        return version("gguf")
    except Exception:
        return "?"


def scalar(vt, part):
    if vt == V.STRING:
        return bytes(part).decode("utf-8")
    v = part[0].item()
    if vt == V.BOOL:
        return bool(v)
    if vt in (V.FLOAT32, V.FLOAT64):
        return float(v)
    return int(v)


def field_value(f):
    # f.types: [ARRAY, sub, (sub, ...)] for arrays; f.data: indices into f.parts of the (innermost) values
    if f.types[0] != V.ARRAY:
        return scalar(V(f.types[0]), f.parts[f.data[0]])
    return parse_array_parts(f)


def parse_array_parts(f):
    # rebuild (possibly nested) arrays by re-reading the raw bytes of the field: parts are [key_len, key, type,
    # then for the array: sub type, count, items...] flattened; walk them in order
    parts = f.parts[3:]
    pos = [0]

    def take():
        p = parts[pos[0]]
        pos[0] += 1
        return p

    def read_array():
        sub = V(int(take()[0]))
        n = int(take()[0])
        out = []
        for _ in range(n):
            if sub == V.ARRAY:
                out.append(read_array_tagged())
            elif sub == V.STRING:
                take()  # length
                out.append(bytes(take()).decode("utf-8"))
            else:
                out.append(scalar(sub, take()))
        return sub, out

    def read_array_tagged():
        sub, vals = read_array()
        return {"sub_type": sub.name, "items": vals}

    sub, vals = read_array()
    return vals


def st_names(path):
    import struct
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
    return sorted(k for k in h if k != "__metadata__")


def name_map():
    """[hf, gguf, transform] per HF tensor as llama.cpp's converter names it: ModelBase.filter_tensors
    ("language_model." removed, e_score_correction_bias -> e_score_correction.bias), Glm4MoeModel (experts stacked,
    NextN layer blk.{n_layers}), Glm4Model (M-RoPE q/k permuted to NeoX order), Qwen3VLVisionModel ("model.visual." ->
    "visual.", Conv3d patch embedding split in two), then gguf-py's TensorNameMap.get_name(try_suffixes=.weight/.bias)"""
    import re
    from gguf import MODEL_ARCH
    out = {}
    moe = st_names("weights/tiny-glm4v-moe/model.safetensors")
    dense = st_names("weights/tiny-glm4v-dense/model.safetensors")
    n_moe = 1 + max(int(m.group(1)) for k in moe if (m := re.search(r"layers\.(\d+)\.", k)))
    n_dense = 1 + max(int(m.group(1)) for k in dense if (m := re.search(r"layers\.(\d+)\.", k)))
    # names the tiny checkpoints do not have: q/k norms, the NextN layer, vision biases
    L = "model.language_model.layers."
    extra_moe = [L + "0.self_attn.q_norm.weight", L + "0.self_attn.k_norm.weight"] + [
        L + f"{n_moe}.{t}" for t in ("eh_proj.weight", "embed_tokens.weight", "enorm.weight", "hnorm.weight",
                                      "shared_head.head.weight", "shared_head.norm.weight", "self_attn.q_proj.weight",
                                      "mlp.experts.0.up_proj.weight", "mlp.gate.e_score_correction_bias")]
    extra_vis = ["model.visual.blocks.0.attn.qkv.bias", "model.visual.blocks.0.attn.proj.bias"]

    def text(names, arch, n_blocks, neox):
        tm = gguf.get_tensor_name_map(arch, n_blocks)
        rows = []
        for hf in names:
            if hf.startswith("model.visual."):
                continue
            name = hf.replace("e_score_correction_bias", "e_score_correction.bias").replace("language_model.", "")
            tr = "copy"
            m = re.match(r"(model\.layers\.\d+\.mlp\.experts\.)(\d+)\.(.*)", name)
            if m:
                name = m.group(1) + m.group(3)
                hf = re.sub(r"experts\.\d+\.", "experts.{xid}.", hf)
                tr = "stack"
            g = tm.get_name(name, try_suffixes=(".weight", ".bias"))
            assert g is not None, hf
            if ".nextn." in g:
                tr = "unused"
            if neox and re.search(r"self_attn\.[qk]_proj\.", hf):
                tr = "neox_qk"
            if [hf, g, tr] not in rows:
                rows.append([hf, g, tr])
        return rows

    out["glm4moe"] = text(moe + extra_moe, MODEL_ARCH.GLM4_MOE, n_moe + 1, False)
    out["glm4"] = text(dense, MODEL_ARCH.GLM4, n_dense, True)
    vm = gguf.get_tensor_name_map(MODEL_ARCH.MMPROJ, 64)
    rows = []
    for hf in [k for k in moe if k.startswith("model.visual.")] + extra_vis:
        name = hf.replace("model.visual.", "visual.", 1)
        if name == "visual.patch_embed.proj.weight":
            base = gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.V_ENC_EMBD_PATCH]
            rows += [[hf, base + ".weight", "conv3d_t0"], [hf, base + ".weight.1", "conv3d_t1"]]
            continue
        g = vm.get_name(name, try_suffixes=(".weight", ".bias"))
        assert g is not None, hf
        rows.append([hf, g, "copy"])
    out["glm4v_mmproj"] = rows
    # Glm4Model.normal_to_neox (torch reshape / slicing / cat, here in numpy) applied to the row numbers of a q_proj of
    # 3 heads of 8 (rotary_dim 4) and 2 heads of 6 (rotary_dim 2): "neox" lists, for each GGUF row, the HF row it holds
    def normal_to_neox(rows, head_dim, rot):
        w = rows.reshape(-1, head_dim, 1)
        perm = np.concatenate((w[:, :rot:2, :], w[:, 1:rot:2, :]), axis=1)
        return np.concatenate((perm, w[:, rot:, :]), axis=1).reshape(-1)
    out["neox"] = [{"head_dim": hd, "rotary_dim": rd, "rows": [int(v) for v in normal_to_neox(np.arange(nh * hd), hd, rd)]}
                   for nh, hd, rd in ((3, 8, 4), (2, 6, 2))]
    with open(os.path.join(OUT, "name_map.json"), "w") as fo:
        json.dump(out, fo, indent=0)
        fo.write("\n")


def write_split():
    from pathlib import Path
    w = gguf.GGUFWriter(os.path.join(OUT, "split.gguf"), arch="testarch", split_max_tensors=2)
    w.add_string("general.name", "split")
    names = []
    for i in range(5):
        t = rng.standard_normal((2, 8)).astype(np.float32)
        names.append(f"t{i}")
        w.add_tensor(f"t{i}", t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    ts = []
    for k in range(3):
        r = gguf.GGUFReader(os.path.join(OUT, f"split-{k + 1:05d}-of-00003.gguf"))
        for t in r.tensors:
            ts.append({"name": t.name, "shard": k, "values": [float(v) for v in np.asarray(t.data).ravel()]})
    with open(os.path.join(OUT, "split.json"), "w") as fo:
        json.dump({"shards": 3, "tensors": ts}, fo, indent=0)
        fo.write("\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    name_map()
    tensors = []
    for q in SUPPORTED:
        bs = gguf.GGML_QUANT_SIZES[q][0]
        K = 512 if bs == 256 else 96 if bs == 32 else 37
        tensors.append((f"blk.0.{q.name.lower()}.weight", q, (3, K)))
    tensors.append(("blk.1.q8_0_3d.weight", T.Q8_0, (2, 3, 64)))
    tensors.append(("blk.1.f32_1d.bias", T.F32, (5,)))
    tensors.append(("blk.1.iq4_nl.weight", T.IQ4_NL, (2, 64)))
    md = [
        ("test.u8", V.UINT8, 200, None), ("test.i8", V.INT8, -100, None),
        ("test.u16", V.UINT16, 60000, None), ("test.i16", V.INT16, -30000, None),
        ("test.u32", V.UINT32, 4000000000, None), ("test.i32", V.INT32, -2000000000, None),
        ("test.f32", V.FLOAT32, 0.1, None), ("test.bool", V.BOOL, True, None),
        ("test.bool_false", V.BOOL, False, None),
        ("test.string", V.STRING, "héllo, GGUF \u4e16\u754c", None), ("test.empty_string", V.STRING, "", None),
        ("test.u64", V.UINT64, 18000000000000000000, None), ("test.i64", V.INT64, -9000000000000000000, None),
        ("test.f64", V.FLOAT64, 3.141592653589793, None),
        ("test.arr_u8", V.ARRAY, [0, 1, 255], V.UINT8), ("test.arr_i8", V.ARRAY, [-128, 0, 127], V.INT8),
        ("test.arr_u16", V.ARRAY, [65535, 7], V.UINT16), ("test.arr_i16", V.ARRAY, [-32768, 32767], V.INT16),
        ("test.arr_u32", V.ARRAY, [1, 4294967295], V.UINT32), ("test.arr_i32", V.ARRAY, [-5, 6, -7], V.INT32),
        ("test.arr_f32", V.ARRAY, [0.5, -1.25, 1e-30, 3.4e38], V.FLOAT32),
        ("test.arr_bool", V.ARRAY, [True, False, True], V.BOOL),
        ("test.arr_str", V.ARRAY, ["a", "", "<|user|>", "\u0120the"], V.STRING),
        ("test.arr_u64", V.ARRAY, [0, 18446744073709551615], V.UINT64),
        ("test.arr_i64", V.ARRAY, [-9223372036854775808, 9223372036854775807], V.INT64),
        ("test.arr_f64", V.ARRAY, [2.5, -1e300], V.FLOAT64),
        ("test.arr_nested", V.ARRAY, [[1, 2, 3], [4], [5, 6]], None),
        ("test.arr_nested_str", V.ARRAY, [["x", "yz"], ["w"]], None),
        ("test.arr_nested2", V.ARRAY, [[[1.5], [2.5, 3.5]], [[4.5]]], None),
    ]
    write_case("types", tensors, md)
    write_case("align64", [("a", T.Q8_0, (2, 32)), ("b", T.F32, (3,)), ("c", T.Q4_K, (1, 256))],
               [("general.name", V.STRING, "align", None)], alignment=64)
    write_split()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {OUT} ({total} bytes) with gguf-py {gguf_version()}")


if __name__ == "__main__":
    sys.exit(main())
