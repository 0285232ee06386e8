#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# pdf_hf_check.py - tests/cli_pdf.sh's optional check that a rendered PDF page's processed pixels equal transformers'
# image processor on the PNG pdftoppm writes for it:
#   python3 tests/pdf_hf_check.py MODEL_DIR DUMP.safetensors torch|pil PAGE.png...
# torch: Glm4vImageProcessor (torchvision backend, = glm4v's default resize); pil: Glm4vImageProcessorPil
# (= glm4v --resize pil with Pillow <= 12, --resize pil13 with Pillow >= 13). The PNGs are processed as one batch, as
# the pages of `glm4v -i file.pdf --dump` are; its pixel_values and image_grid_thw must equal HF's bit for bit. Prints "ok - ..." or "not ok - ..."; exit 0/1; exit 77 when the libraries are missing.
import json
import struct
import sys

try:
    import numpy as np
    import transformers
    from transformers.image_utils import load_image
except Exception as e:  # the caller skips the check
    print(f"# skipped: {e}")
    sys.exit(77)

model, dump, mode = sys.argv[1:4]
pngs = sys.argv[4:]
try:
    if mode == "torch":
        import torchvision  # noqa: F401
        from transformers import Glm4vImageProcessor as Proc
    else:
        import PIL  # noqa: F401
        from transformers import Glm4vImageProcessorPil as Proc
except Exception as e:
    print(f"# skipped: {e}")
    sys.exit(77)

with open(f"{model}/processor_config.json") as f:
    cfg = json.load(f).get("image_processor", {})
cfg.pop("image_processor_type", None)
cfg.pop("processor_class", None)
proc = Proc(**cfg)
out = proc(images=[load_image(p) for p in pngs], return_tensors="np")
hf_pv = np.asarray(out["pixel_values"], dtype=np.float32)
hf_grid = np.asarray(out["image_grid_thw"], dtype=np.int64)

with open(dump, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    head = json.loads(f.read(n))
    base = 8 + n

    def tensor(name, dt):
        h = head[name]
        a, b = h["data_offsets"]
        f.seek(base + a)
        return np.frombuffer(f.read(b - a), dtype=dt).reshape(h["shape"])

    pv = tensor("pixel_values", np.float32)
    grid = tensor("image_grid_thw", np.int64)

what = f"{len(pngs)} page PNG(s): Glm4vImageProcessor{'Pil' if mode == 'pil' else ''} (transformers {transformers.__version__})"
if grid.tolist() != hf_grid.tolist():
    print(f"not ok - {what}: grid {grid.tolist()} != HF {hf_grid.tolist()}")
    sys.exit(1)
if pv.shape != hf_pv.shape or pv.tobytes() != hf_pv.tobytes():
    d = np.abs(pv.astype(np.float64) - hf_pv.astype(np.float64)).max() if pv.shape == hf_pv.shape else float("nan")
    print(f"not ok - {what}: pixel_values differ (shape {pv.shape} vs {hf_pv.shape}, max |diff| {d})")
    sys.exit(1)
print(f"ok - {what}: pixel_values and image_grid_thw equal bit for bit, grid {grid.tolist()}")
