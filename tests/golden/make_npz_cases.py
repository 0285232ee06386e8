#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""make_npz_cases.py - small .npy/.npz files written by numpy for the glm4v-compare reader tests (tests/test_compare.c).

Every array is defined by a formula that tests/test_compare.c rebuilds in C (keep the two in sync):
  f32 [3,4] float32  = i*0.5 - 1.25          (i = flat index)
  f64 [2,3] float64  = i/3
  f16 [5]   float16  = (i-2)*0.25
  i64 [2,2] int64    = [-3, 0, 7, 2**40]
  i32 [4]   int32    = [-1, 2, -3, 100000]
  flags [3] bool     = [True, False, True]
  scalar [] float32  = 3.5
  empty [0,3] float32
Outputs in tests/data/npz/: savez.npz (stored entries), savez_compressed.npz (deflate), logits.npy (np.save of
f32 [2,5] = i*0.25 - 1), logits_v2.npy (same array, .npy format version 2.0), fortran.npy (Fortran order, must be
rejected), bigendian.npy ('>f4', must be rejected).
Run from the repo root: python3 tests/golden/make_npz_cases.py
"""
import os

import numpy as np

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "npz")
os.makedirs(out, exist_ok=True)

arrays = {
    "f32": (np.arange(12, dtype=np.float32) * 0.5 - 1.25).reshape(3, 4),
    "f64": (np.arange(6, dtype=np.float64) / 3).reshape(2, 3),
    "f16": ((np.arange(5) - 2) * 0.25).astype(np.float16),
    "i64": np.array([[-3, 0], [7, 2**40]], dtype=np.int64),
    "i32": np.array([-1, 2, -3, 100000], dtype=np.int32),
    "flags": np.array([True, False, True]),
    "scalar": np.float32(3.5).reshape(()),
    "empty": np.zeros((0, 3), dtype=np.float32),
}
np.savez(os.path.join(out, "savez.npz"), **arrays)
np.savez_compressed(os.path.join(out, "savez_compressed.npz"), **arrays)

logits = (np.arange(10, dtype=np.float32) * 0.25 - 1).reshape(2, 5)
np.save(os.path.join(out, "logits.npy"), logits)
with open(os.path.join(out, "logits_v2.npy"), "wb") as f:
    np.lib.format.write_array(f, logits, version=(2, 0))
np.save(os.path.join(out, "fortran.npy"), np.asfortranarray(logits))
np.save(os.path.join(out, "bigendian.npy"), logits.astype(">f4"))

# sanity: numpy reads back what it wrote
for name in ("savez.npz", "savez_compressed.npz"):
    with np.load(os.path.join(out, name)) as z:
        for k, v in arrays.items():
            assert z[k].dtype == v.dtype and z[k].shape == v.shape and np.array_equal(z[k], v), (name, k)
print("wrote", sorted(os.listdir(out)))
