# SPDX-License-Identifier: MIT
# gen_safetensors_cases.py - writes tests/data/safetensors_cases.json: small safetensors files (hex), each with the
# verdict of the real `safetensors` library (safetensors.deserialize, Rust crate's read_metadata + Metadata::validate)
# and, where its error names a tensor, that name. tests/test_safetensors.c checks that sf_parse accepts and refuses
# exactly these (and names the tensor). Run: python3 tests/gen_safetensors_cases.py (safetensors 0.8.0 was used).
import json
import re
import struct

import safetensors


def f(header, data_len, pad=b""):
    h = header.encode() if isinstance(header, str) else header
    h += pad
    return struct.pack("<Q", len(h)) + h + bytes(range(256)) * (data_len // 256) + bytes(range(data_len % 256))


def t(dtype, shape, b, e):
    return {"dtype": dtype, "shape": shape, "data_offsets": [b, e]}


def hdr(d):
    return json.dumps(d, separators=(",", ":"))


A = t("F32", [2], 0, 8)
cases = [
    ("valid", f(hdr({"a": A}), 8)),
    ("odd_header_length", f(hdr({"a": A}), 8, b" " * (1 if len(hdr({"a": A})) % 2 == 0 else 2))),
    ("trailing_spaces", f(hdr({"a": A}), 8, b"       ")),
    ("trailing_tab_newline", f(hdr({"a": A}), 8, b"\t\n\r ")),
    ("leading_space", f(" " + hdr({"a": A}), 8)),
    ("trailing_garbage", f(hdr({"a": A}), 8, b"x")),
    ("trailing_nul", f(hdr({"a": A}), 8, b"\0")),
    ("trailing_second_object", f(hdr({"a": A}), 8, b"{}")),
    ("overlap", f(hdr({"a": A, "b": t("F32", [2], 4, 12)}), 12)),
    ("same_span", f(hdr({"a": A, "b": t("F32", [2], 0, 8)}), 8)),
    ("gap", f(hdr({"a": A, "b": t("F32", [2], 12, 20)}), 20)),
    ("data_not_covered", f(hdr({"a": A}), 12)),
    ("unsorted_contiguous", f(hdr({"b": t("BF16", [4], 8, 16), "a": A}), 16)),
    ("empty_tensors_same_offset", f(hdr({"z1": t("F32", [0], 0, 0), "z2": t("F32", [0, 3], 0, 0), "a": A}), 8)),
    ("empty_inside_other", f(hdr({"a": A, "z": t("F32", [0], 4, 4)}), 8)),
    ("no_tensors", f("{}", 0)),
    ("no_tensors_with_data", f("{}", 4)),
    ("metadata_strings", f(hdr({"__metadata__": {"format": "pt"}, "a": A}), 8)),
    ("metadata_number", f(hdr({"__metadata__": {"format": 1}, "a": A}), 8)),
    ("header_invalid_utf8", f(b'{"__metadata__":{"k":"\xff"},' + hdr({"a": A})[1:].encode(), 8)),
    ("first_not_at_zero", f(hdr({"a": t("F32", [2], 4, 12)}), 12)),
]

out = []
for name, blob in cases:
    try:
        safetensors.deserialize(blob)
        ok, tensor = True, None
    except Exception as e:  # SafetensorError
        ok, msg = False, str(e)
        m = re.search(r"invalid offset for tensor `([^`]*)`", msg)
        tensor = m.group(1) if m else None
        if name == "same_span":  # equal spans: the library names either one (its HashMap order), so no name is checked
            tensor = None
    out.append({"name": name, "hex": blob.hex(), "ok": ok, "tensor": tensor})
    print(name, ok, tensor)
with open("tests/data/safetensors_cases.json", "w") as fp:
    json.dump({"generator": "tests/gen_safetensors_cases.py", "safetensors": safetensors.__version__, "cases": out},
              fp, indent=1)
