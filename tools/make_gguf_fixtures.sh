#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make_gguf_fixtures.sh - converts the tiny checkpoints weights/tiny-glm4v-{moe,dense} to GGUF with llama.cpp's own
# converter (convert_hf_to_gguf.py, unmodified; see tools/gguf_convert.py for the one tokenizer-hash lookup it
# answers): for each, the text file and the vision "mmproj" file, as BF16 (lossless: the checkpoints are bf16) and
# Q8_0, and with a built llama-quantize the K-quant text files. Writes weights/gguf/*.gguf (committed;
# weights/gguf/README.md records the llama.cpp commit).
#
# usage: tools/make_gguf_fixtures.sh LLAMA_CPP_DIR [OUT_DIR]
#   LLAMA_CPP_DIR: a llama.cpp source tree, e.g. the vendor/llama.cpp of the llama-cpp-python sdist:
#     pip download --no-binary :all: --no-deps llama-cpp-python==0.3.36 && tar xzf llama_cpp_python-0.3.36.tar.gz
#     (0.3.36 vendors ggml-org/llama.cpp@0c1e57098, the commit the committed files were made with)
# Needs python3 with torch, transformers, numpy, safetensors, sentencepiece-free (GLM is BPE) — the converter's own
# requirements; the gguf package comes from LLAMA_CPP_DIR/gguf-py.
set -euo pipefail
cd "$(dirname "$0")/.."
LC=${1:?usage: tools/make_gguf_fixtures.sh LLAMA_CPP_DIR [OUT_DIR]}
OUT=${2:-weights/gguf}
mkdir -p "$OUT"
for arch in moe dense; do
    for t in bf16 q8_0; do
        python3 tools/gguf_convert.py "$LC" "weights/tiny-glm4v-$arch" --outtype $t \
            --outfile "$OUT/tiny-glm4v-$arch-$t.gguf" >"$OUT/.log" 2>&1 || { tail -n 20 "$OUT/.log"; exit 1; }
        python3 tools/gguf_convert.py "$LC" "weights/tiny-glm4v-$arch" --mmproj --outtype $t \
            --outfile "$OUT/mmproj-tiny-glm4v-$arch-$t.gguf" >"$OUT/.log" 2>&1 || { tail -n 20 "$OUT/.log"; exit 1; }
        echo "$OUT/tiny-glm4v-$arch-$t.gguf $OUT/mmproj-tiny-glm4v-$arch-$t.gguf"
    done
done
# tests/golden/ckpt/moe-var (other widths, 16 experts in 4 groups, 4 M-RoPE sections, a vision qkv bias) as Q8_0
python3 tools/gguf_convert.py "$LC" tests/golden/ckpt/moe-var --outtype q8_0 --outfile "$OUT/golden-moe-var-q8_0.gguf" \
    >"$OUT/.log" 2>&1 || { tail -n 20 "$OUT/.log"; exit 1; }
python3 tools/gguf_convert.py "$LC" tests/golden/ckpt/moe-var --mmproj --outtype q8_0 \
    --outfile "$OUT/mmproj-golden-moe-var-q8_0.gguf" >"$OUT/.log" 2>&1 || { tail -n 20 "$OUT/.log"; exit 1; }
echo "$OUT/golden-moe-var-q8_0.gguf $OUT/mmproj-golden-moe-var-q8_0.gguf"
# requantised by llama-quantize (LLAMA_CPP_DIR/build/bin, when built) from the BF16 text files: the K-quant mixtures
# of the published files, pure Q2_K, Q5_K and Q4_1 (only rows of a multiple of 256 columns take K-quants: the tiny models'
# 256-wide MLP down projection; the rest falls back to Q4_0 / Q5_0 / Q5_1 / Q8_0 as llama-quantize chooses)
Q=$LC/build/bin/llama-quantize
if [ -x "$Q" ]; then
    for spec in "moe Q4_K_M" "dense Q4_K_M" "moe Q3_K_S" "moe Q2_K --pure" "moe Q5_K --pure" "dense Q4_1 --pure"; do
        set -- $spec
        lower=$(tr 'A-Z' 'a-z' <<<"$2")
        "$Q" ${3:-} "$OUT/tiny-glm4v-$1-bf16.gguf" "$OUT/tiny-glm4v-$1-$lower.gguf" "$2" 2 >"$OUT/.log" 2>&1 ||
            { tail -n 20 "$OUT/.log"; exit 1; }
        echo "$OUT/tiny-glm4v-$1-$lower.gguf"
    done
else
    echo "($Q not built: the K-quant files are not remade)" >&2
fi
rm -f "$OUT/.log"
